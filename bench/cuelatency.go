package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"

	"fieldkit/drivers/cue"
	"fieldkit/drivers/gpioout"
	"fieldkit/internal/broker"
	"fieldkit/internal/bus"
	"fieldkit/internal/mqttc"
	"fieldkit/scenes"
)

func init() { register("cue-latency", benchCueLatency) }

// stockMosquittoConf is Debian's /etc/mosquitto/mosquitto.conf as a venue
// runs it, moved to a free loopback port and a private directory: no
// set_tcp_nodelay, so the broker's sockets use Nagle's algorithm. Mosquitto
// 2 allows anonymous clients on a listener only when told to; the stock
// file has no listener (local-only, anonymous allowed), so the port line
// and allow_anonymous are what it takes to keep those semantics here.
const stockMosquittoConf = `pid_file %[1]s/mosquitto.pid
persistence true
persistence_location %[1]s/
log_dest none
listener %[2]s 127.0.0.1
allow_anonymous true
`

// benchCueLatency measures one cue at a time through a broker: the
// broker's own round trip, a scene relaying an MQTT message to another
// topic (publish step, passthrough), a minimal relay written with paho
// doing the same, and a scene run message until a GPIO pin changes. All
// four are interleaved in one run, so their ratios hold on a busy box.
func benchCueLatency(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("cue-latency", flag.ContinueOnError)
	n := fs.Int("n", 5000, "cues of each kind to send")
	timeout := fs.Duration("timeout", time.Second, "a cue not through within this is lost")
	every := fs.Duration("every", 10*time.Millisecond, "start a round of cues this often (a show's pace; within the default per-source limit of 100 fires a second)")
	brokers := fs.String("brokers", "stock,embedded", "comma-separated: stock (Mosquitto, Debian's stock settings), nodelay (Mosquitto with set_tcp_nodelay), embedded (the agent's own broker)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	for _, kind := range strings.Split(*brokers, ",") {
		if err := cueLatencyOn(ctx, strings.TrimSpace(kind), *n, *timeout, *every); err != nil {
			return fmt.Errorf("%s: %w", kind, err)
		}
	}
	return nil
}

func cueLatencyOn(ctx context.Context, kind string, n int, timeout, every time.Duration) error {
	addr, stopBroker, err := startBenchBroker(ctx, kind)
	if err != nil {
		return err
	}
	defer stopBroker()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	conn, connDone := benchConn(ctx, addr, "fieldkit/bench")
	defer func() { cancel(); <-connDone }()

	pin := newProbePin("GPIO17")
	lamp, err := gpioout.New(pin, &gpioout.Opts{Name: "cue_lamp", Log: quietBenchLog()})
	if err != nil {
		return err
	}
	// Alternate on and off so that every cue changes the pin.
	_, engDone, err := benchEngine(ctx, conn, map[string]cue.Target{"cue_lamp": lamp}, map[string]string{
		"on.yaml":    "name: on\npolicy: queue\nsteps:\n  - {at: 0s, target: cue_lamp, do: \"on\"}\n",
		"off.yaml":   "name: off\npolicy: queue\nsteps:\n  - {at: 0s, target: cue_lamp, do: \"off\"}\n",
		"relay.yaml": "name: relay\npolicy: queue\ntriggers:\n  - mqtt: bench/cue/in\nsteps:\n  - {at: 0s, publish: {topic: bench/cue/out, passthrough: true}}\n",
	})
	if err != nil {
		return err
	}
	defer func() { cancel(); <-engDone }()

	// The minimal relay: what any MQTT client does with the same broker.
	relay, err := benchClient(addr, "bench-paho-relay")
	if err != nil {
		return err
	}
	defer relay.Disconnect(100)
	if tok := relay.Subscribe("bench/paho/in", 1, func(c paho.Client, m paho.Message) {
		c.Publish("bench/paho/out", 0, false, m.Payload())
	}); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		return fmt.Errorf("subscribe: %v", tok.Error())
	}

	// One client sends every cue and receives every echo, QoS 0 both ways,
	// as a venue's shop system or a shell pipe would.
	pub, err := benchClient(addr, "bench-shop")
	if err != nil {
		return err
	}
	defer pub.Disconnect(100)
	echo := make(chan echoMsg, 16)
	for _, t := range []string{"bench/rtt", "bench/cue/out", "bench/paho/out"} {
		if tok := pub.Subscribe(t, 0, func(_ paho.Client, m paho.Message) {
			echo <- echoMsg{m.Topic(), string(m.Payload()), time.Now()}
		}); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			return fmt.Errorf("subscribe: %v", tok.Error())
		}
	}
	// The agent subscribes in the background: wait until cues get through.
	if err := waitCueReady(ctx, pub, pin); err != nil {
		return err
	}
	if err := waitEcho(ctx, pub, echo, "bench/cue/in", "bench/cue/out"); err != nil {
		return err
	}
	if err := waitEcho(ctx, pub, echo, "bench/paho/in", "bench/paho/out"); err != nil {
		return err
	}

	var rtts, relayed, paholat, pinlat []time.Duration
	var lostRelay, lostPaho, lostPin int
	level := pin.Level()
	load0 := loadAvg()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for i := 0; i < n && ctx.Err() == nil; i++ {
		<-tick.C
		id := strconv.Itoa(i)
		// The first message after the pause finds every thread asleep
		// and pays for waking them; rotate which case goes first so
		// that no case always pays it.
		cases := []func(){
			func() {
				if d, ok := roundTrip(pub, echo, "bench/rtt", "bench/rtt", id, timeout); ok {
					rtts = append(rtts, d)
				}
			},
			func() {
				if d, ok := roundTrip(pub, echo, "bench/cue/in", "bench/cue/out", id, timeout); ok {
					relayed = append(relayed, d)
				} else {
					lostRelay++
				}
			},
			func() {
				if d, ok := roundTrip(pub, echo, "bench/paho/in", "bench/paho/out", id, timeout); ok {
					paholat = append(paholat, d)
				} else {
					lostPaho++
				}
			},
		}
		for k := range cases {
			cases[(i+k)%len(cases)]()
		}

		name := "on"
		if level == gpio.High {
			name = "off"
		}
		t0 := time.Now()
		pub.Publish("fieldkit/bench/scene/"+name+"/run", 0, false, []byte(`{}`))
		select {
		case t := <-pin.changed:
			pinlat = append(pinlat, t.Sub(t0))
			level = !level
		case <-time.After(timeout):
			lostPin++
			level = pin.Level()
		}
	}
	b := "cue-latency"
	m := func(metric string, v float64, unit string) { emit(b, kind+"."+metric, v, unit) }
	m("load_avg_1m", (load0+loadAvg())/2, "load")
	m("cues", float64(n), "count")
	m("broker_rtt_p50_us", quantileUS(rtts, 0.50), "us")
	m("broker_rtt_p99_us", quantileUS(rtts, 0.99), "us")
	m("relay_p50_us", quantileUS(relayed, 0.50), "us")
	m("relay_p99_us", quantileUS(relayed, 0.99), "us")
	m("relay_max_us", quantileUS(relayed, 1), "us")
	m("relay_lost", float64(lostRelay), "count")
	m("paho_relay_p50_us", quantileUS(paholat, 0.50), "us")
	m("paho_relay_p99_us", quantileUS(paholat, 0.99), "us")
	m("paho_relay_lost", float64(lostPaho), "count")
	m("pin_p50_us", quantileUS(pinlat, 0.50), "us")
	m("pin_p99_us", quantileUS(pinlat, 0.99), "us")
	m("pin_max_us", quantileUS(pinlat, 1), "us")
	m("pin_lost", float64(lostPin), "count")
	if r := quantileUS(rtts, 0.99); r > 0 {
		m("relay_p99_over_broker_p99", quantileUS(relayed, 0.99)/r, "ratio")
		m("pin_p99_over_broker_p99", quantileUS(pinlat, 0.99)/r, "ratio")
	}
	if p := quantileUS(paholat, 0.50); p > 0 {
		m("relay_p50_over_paho_p50", quantileUS(relayed, 0.50)/p, "ratio")
	}
	return nil
}

type echoMsg struct {
	topic, payload string
	at             time.Time
}

// roundTrip publishes id on out and waits for it to come back on in;
// stale echoes of earlier, lost cues are skipped.
func roundTrip(c paho.Client, echo <-chan echoMsg, out, in, id string, timeout time.Duration) (time.Duration, bool) {
	t0 := time.Now()
	c.Publish(out, 0, false, []byte(id))
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		select {
		case m := <-echo:
			if m.topic == in && m.payload == id {
				return m.at.Sub(t0), true
			}
		case <-deadline.C:
			return 0, false
		}
	}
}

func waitEcho(ctx context.Context, c paho.Client, echo <-chan echoMsg, out, in string) error {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && ctx.Err() == nil; {
		if _, ok := roundTrip(c, echo, out, in, "ready", 200*time.Millisecond); ok {
			return nil
		}
	}
	return fmt.Errorf("nothing came back on %s for %s", in, out)
}

// loadAvg is the one-minute load average (0 where /proc is missing).
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f, _ := strconv.ParseFloat(strings.Fields(string(b))[0], 64)
	return f
}

func waitCueReady(ctx context.Context, pub paho.Client, pin *probePin) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		pub.Publish("fieldkit/bench/scene/on/run", 0, false, []byte(`{}`))
		select {
		case <-pin.changed:
			for pin.Level() != gpio.High {
				time.Sleep(time.Millisecond)
			}
			return nil
		case <-time.After(200 * time.Millisecond):
		}
	}
	return errors.New("the agent never applied a cue: no subscription on the run topic")
}

// probePin is a gpiotest pin that reports each level change, with the
// time it happened, on changed.
type probePin struct {
	*gpiotest.Pin
	changed chan time.Time
	last    atomic.Bool
}

func newProbePin(name string) *probePin {
	return &probePin{Pin: &gpiotest.Pin{N: name}, changed: make(chan time.Time, 1024)}
}

func (p *probePin) Out(l gpio.Level) error {
	now := time.Now()
	err := p.Pin.Out(l)
	if p.last.Swap(bool(l)) != bool(l) {
		select {
		case p.changed <- now:
		default:
		}
	}
	return err
}

func (p *probePin) Level() gpio.Level { return gpio.Level(p.last.Load()) }

func quietBenchLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// benchConn is the agent's MQTT connection to broker, run until ctx ends.
func benchConn(ctx context.Context, broker, prefix string) (*mqttc.Conn, chan struct{}) {
	conn := mqttc.New(mqttc.Options{URL: "tcp://" + broker, ClientID: "bench-agent", Prefix: prefix, Log: quietBenchLog()})
	done := make(chan struct{})
	go func() { defer close(done); _ = conn.Run(ctx) }()
	return conn, done
}

// benchEngine writes scene files to a temporary directory and runs an
// engine on the real clock until ctx ends.
func benchEngine(ctx context.Context, conn *mqttc.Conn, targets map[string]cue.Target, files map[string]string) (*scenes.Engine, chan struct{}, error) {
	dir, err := os.MkdirTemp("", "scenes-bench")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(dir)
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			return nil, nil, err
		}
	}
	// The scheduler set up as the agent sets it up for its timelines.
	scenes.ReserveProcs()
	d := scenes.Deps{Targets: targets, Bus: bus.New(quietBenchLog()), Log: quietBenchLog()}
	if conn != nil {
		d.MQTT = conn
	}
	e, err := scenes.New(scenes.Config{Dir: dir}, d)
	if err != nil {
		return nil, nil, err
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = e.Run(ctx) }()
	return e, done, nil
}

func benchClient(broker, id string) (paho.Client, error) {
	o := paho.NewClientOptions().AddBroker("tcp://" + broker).SetClientID(id).SetCleanSession(true).SetOrderMatters(false)
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return nil, fmt.Errorf("connect %s: %v", broker, tok.Error())
	}
	return c, nil
}

// startBenchMosquitto runs mosquitto on a free loopback port; the binary
// is found as the tests find it (FIELDKIT_MOSQUITTO, PATH, /usr/sbin).
func startBenchMosquitto() (addr string, stop func(), err error) { return startBenchMosquittoConf("") }

// startBenchMosquittoConf is startBenchMosquitto with extra config lines.
func startBenchMosquittoConf(extra string) (addr string, stop func(), err error) {
	return startMosquitto(func(_, port string) string {
		return fmt.Sprintf("listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n", port) + extra
	})
}

// startMosquitto runs mosquitto with the config conf writes for a private
// directory and a free port.
func startMosquitto(conf func(dir, port string) string) (addr string, stop func(), err error) {
	bin := os.Getenv("FIELDKIT_MOSQUITTO")
	if bin == "" {
		if p, err := exec.LookPath("mosquitto"); err == nil {
			bin = p
		}
	}
	for _, p := range []string{"/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"} {
		if bin != "" {
			break
		}
		if _, err := os.Stat(p); err == nil {
			bin = p
		}
	}
	if bin == "" {
		return "", nil, errors.New("mosquitto is not installed (apt-get install mosquitto, or set FIELDKIT_MOSQUITTO)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	addr = ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	dir, err := os.MkdirTemp("", "bench-mosquitto")
	if err != nil {
		return "", nil, err
	}
	// Started as root, mosquitto drops to its own user: let it write its
	// pid and persistence files here.
	if err := os.Chmod(dir, 0o777); err != nil {
		return "", nil, err
	}
	file := filepath.Join(dir, "mosquitto.conf")
	src := conf(dir, port)
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		return "", nil, err
	}
	fmt.Fprintf(os.Stderr, "mosquitto -c %s:\n%s", file, src)
	cmd := exec.Command(bin, "-c", file)
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("start mosquitto: %w", err)
	}
	stop = func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		os.RemoveAll(dir)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return addr, stop, nil
		}
		if time.Now().After(deadline) {
			stop()
			return "", nil, fmt.Errorf("mosquitto not listening on %s: %w", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startBenchMosquittoStock runs mosquitto with stockMosquittoConf (plus
// extra lines) on a free loopback port, and prints the file it used on
// stderr so that a result can name its broker settings.
func startBenchMosquittoStock(extra string) (addr string, stop func(), err error) {
	return startMosquitto(func(dir, port string) string {
		return fmt.Sprintf(stockMosquittoConf, dir, port) + extra
	})
}

// startBenchBroker starts a broker of kind stock (Mosquitto with
// Debian's stock settings), nodelay (the same with set_tcp_nodelay) or
// embedded (the agent's own) on a free loopback port.
func startBenchBroker(ctx context.Context, kind string) (addr string, stop func(), err error) {
	switch kind {
	case "stock", "nodelay":
		extra := ""
		if kind == "nodelay" {
			extra = "set_tcp_nodelay true\n"
		}
		return startBenchMosquittoStock(extra)
	case "embedded":
		b, err := broker.New(broker.Options{Listen: "127.0.0.1:0", Log: quietBenchLog()})
		if err != nil {
			return "", nil, err
		}
		bctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); _ = b.Run(bctx) }()
		return b.Addr(), func() { cancel(); <-done }, nil
	}
	return "", nil, fmt.Errorf("unknown broker %q (want stock, nodelay or embedded)", kind)
}

// quantileUS is the q quantile of ds in microseconds (nearest rank).
func quantileUS(ds []time.Duration, q float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.5) - 1
	i = max(0, min(i, len(s)-1))
	return float64(s[i]) / float64(time.Microsecond)
}
