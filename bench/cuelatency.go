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
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"

	"fieldkit/drivers/cue"
	"fieldkit/drivers/gpioout"
	"fieldkit/internal/bus"
	"fieldkit/internal/mqttc"
	"fieldkit/scenes"
)

func init() { register("cue-latency", benchCueLatency) }

// benchCueLatency measures a scene-run publish through a real Mosquitto
// on loopback until the first output's pin changes, against the broker
// round trip alone measured in the same run.
func benchCueLatency(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("cue-latency", flag.ContinueOnError)
	n := fs.Int("n", 5000, "cues to send")
	timeout := fs.Duration("timeout", time.Second, "a cue not applied within this is lost")
	nodelay := fs.Bool("nodelay", true, "run mosquitto with set_tcp_nodelay (without it, Nagle's algorithm and delayed ACKs add ~40 ms)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	extra := ""
	if *nodelay {
		extra = "set_tcp_nodelay true\n"
	}
	broker, stop, err := startBenchMosquittoConf(extra)
	if err != nil {
		return err
	}
	defer stop()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	conn, connDone := benchConn(ctx, broker, "fieldkit/bench")
	defer func() { cancel(); <-connDone }()

	pin := newProbePin("GPIO17")
	lamp, err := gpioout.New(pin, &gpioout.Opts{Name: "cue_lamp", Log: quietBenchLog()})
	if err != nil {
		return err
	}
	// Alternate on and off so that every cue changes the pin.
	eng, engDone, err := benchEngine(ctx, conn, map[string]cue.Target{"cue_lamp": lamp}, map[string]string{
		"on.yaml":  "name: on\npolicy: queue\nsteps:\n  - {at: 0s, target: cue_lamp, do: \"on\"}\n",
		"off.yaml": "name: off\npolicy: queue\nsteps:\n  - {at: 0s, target: cue_lamp, do: \"off\"}\n",
	})
	if err != nil {
		return err
	}
	defer func() { cancel(); <-engDone }()
	_ = eng

	pub, err := benchClient(broker, "bench-shop")
	if err != nil {
		return err
	}
	defer pub.Disconnect(100)
	rtt := make(chan time.Time, 16)
	if tok := pub.Subscribe("bench/rtt", 1, func(paho.Client, paho.Message) { rtt <- time.Now() }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		return fmt.Errorf("subscribe: %v", tok.Error())
	}
	// The agent subscribes in the background: wait until a cue gets through.
	if err := waitCueReady(ctx, pub, pin); err != nil {
		return err
	}

	var lat, rtts []time.Duration
	lost := 0
	level := pin.Level()
	for i := 0; i < *n && ctx.Err() == nil; i++ {
		// Broker floor: publish and receive on one client, QoS 1 both ways.
		t0 := time.Now()
		pub.Publish("bench/rtt", 1, false, []byte(`{}`))
		select {
		case t := <-rtt:
			rtts = append(rtts, t.Sub(t0))
		case <-time.After(*timeout):
		}

		name := "on"
		if level == gpio.High {
			name = "off"
		}
		t0 = time.Now()
		pub.Publish("fieldkit/bench/scene/"+name+"/run", 1, false, []byte(`{}`))
		select {
		case t := <-pin.changed:
			lat = append(lat, t.Sub(t0))

			level = !level
		case <-time.After(*timeout):
			lost++
			level = pin.Level()
		}
	}
	const b = "cue-latency"
	emit(b, "cues", float64(len(lat)+lost), "count")
	emit(b, "p50_us", quantileUS(lat, 0.50), "us")
	emit(b, "p99_us", quantileUS(lat, 0.99), "us")
	emit(b, "max_us", quantileUS(lat, 1), "us")
	emit(b, "lost", float64(lost), "count")
	emit(b, "broker_rtt_p50_us", quantileUS(rtts, 0.50), "us")
	emit(b, "broker_rtt_p99_us", quantileUS(rtts, 0.99), "us")
	if r := quantileUS(rtts, 0.99); r > 0 {
		emit(b, "p99_over_broker_rtt_p99", quantileUS(lat, 0.99)/r, "ratio")
	}
	return nil
}

func waitCueReady(ctx context.Context, pub paho.Client, pin *probePin) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		pub.Publish("fieldkit/bench/scene/on/run", 1, false, []byte(`{}`))
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
	conf := filepath.Join(dir, "mosquitto.conf")
	src := fmt.Sprintf("listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n", port)
	src += extra
	if err := os.WriteFile(conf, []byte(src), 0o644); err != nil {
		return "", nil, err
	}
	cmd := exec.Command(bin, "-c", conf)
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
