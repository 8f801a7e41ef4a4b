package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"fieldkit/boards"
	"fieldkit/drivers/cue"
	"fieldkit/firmware-agent/config"
	"fieldkit/internal/broker"
	"fieldkit/internal/bus"
	"fieldkit/internal/clock"
	"fieldkit/internal/doctor"
	"fieldkit/internal/health"
	"fieldkit/internal/httpapi"
	"fieldkit/internal/lifecycle"
	"fieldkit/internal/mqttc"
	"fieldkit/internal/sdnotify"
	"fieldkit/internal/secret"
	"fieldkit/printer/service"
	"fieldkit/scenes"
)

// app is one running agent: the shared plumbing and the parts built on it.
type app struct {
	cfg     *config.Config
	log     *slog.Logger
	clock   clock.Clock
	bus     *bus.Bus
	mqtt    *mqttc.Conn
	broker  *broker.Broker
	router  *httpapi.Router
	health  *health.Registry
	metrics *prometheus.Registry
	board   boards.Board
	group   lifecycle.Group
	notify  *sdnotify.Notifier
	started time.Time

	httpLn net.Listener
	// mqttHealth serialises reportMQTT.
	mqttHealth sync.Mutex
	// parts are every part added, in the order newApp built them.
	parts []part
	// targets are the cue outputs by name, as given to the scene engine.
	targets map[string]cue.Target
	// The parts that others depend on, kept for the wiring test.
	printers *service.Service
	pickup   *pickupLabels
	scenes   *scenes.Engine

	// who names a request's caller once the crew page's auth is built.
	who func(*http.Request) string

	checks []doctor.Check
	status map[string]func() any
	// reload hooks run on SIGHUP.
	reload  []func() error
	closers []func() error
}

// newApp opens the board the config names and builds the agent on it.
func newApp(_ context.Context, cfg *config.Config, log *slog.Logger) (*app, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("data dir %s: %w", cfg.DataDir, err)
	}
	board, err := boards.Open(boards.Options{Name: cfg.Board, Pins: cfg.Pins})
	if err != nil {
		return nil, err
	}
	return build(cfg, log, board)
}

// build is the composition root: it builds the shared plumbing, then
// every part in dependency order, handing each what it needs as
// constructor arguments. Nothing registers itself; what runs is what this
// function builds, whatever the files are called. The app owns board from
// here on. On error build releases whatever was built, so a failed start
// leaves no port bound and no device held.
func build(cfg *config.Config, log *slog.Logger, board boards.Board) (*app, error) {
	a := &app{
		cfg: cfg, log: log, clock: clock.Real(), bus: bus.New(log),
		health: health.NewRegistry(), metrics: prometheus.NewRegistry(),
		notify: sdnotify.FromEnv(), started: time.Now(), status: map[string]func() any{},
		board: board,
	}
	built := false
	defer func() {
		if !built {
			a.close()
		}
	}()
	a.closers = append(a.closers, a.board.Close)
	a.group = lifecycle.Group{Health: a.health, Log: log}
	a.metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a.router = httpapi.NewRouter(httpapi.OpenAuth{}, log)
	a.health.Set("board", health.OK, a.board.Profile().Name)
	if err := a.buildMQTT(); err != nil {
		return nil, err
	}
	// The demo has no devices behind its MQTT outputs: simulated ones
	// answer in their place on the embedded broker, which run starts
	// before the parts. Never with a config file, whose devices are real.
	if cfg.File == "" && a.broker != nil {
		a.add(newDemoDevices(cfg, a.broker.Addr(), log))
	}
	core := a.plumbing()

	// The parts, each after what it needs.
	outs, err := newOutputs(cfg, core, a.board)
	if err != nil {
		return nil, err
	}
	a.closers = append(a.closers, outs.Close)
	a.targets = outs.targets
	a.status["outputs"] = outs.Status
	a.checks = append(a.checks, outs.Checks()...)
	if len(outs.targets) > 0 {
		a.health.Set("outputs", health.OK, fmt.Sprintf("%d outputs", len(outs.targets)))
	}
	for _, b := range outs.buttons {
		a.add(b)
	}

	if len(cfg.Batteries) > 0 {
		w, err := newBattery(cfg, core, a.board)
		if err != nil {
			return nil, err
		}
		a.add(w)
	}

	if len(cfg.Printers) > 0 {
		p, err := newPrinters(cfg, core)
		if err != nil {
			return nil, err
		}
		a.add(p)
		a.printers = p.Service
	}

	// Pickup labels need the printers; the ledger hands them each sale.
	if pp := cfg.Receipts.PickupPrinter; pp != "" && a.printers != nil {
		a.pickup = newPickupLabels(pp, a.printers, core.bus, core.log)
		a.add(a.pickup)
	}
	rs, err := newReceipts(cfg, core, a.pickup, a.whoIs)
	if err != nil {
		return nil, err
	}
	a.add(rs) // added at once, so that a failure below closes the ledger
	up, err := newUplink(rs.Service, core)
	if err != nil {
		return nil, err
	}
	a.add(up)
	routeZSlip(a.router, rs.Service, a.printers)
	if len(cfg.Scanners) > 0 {
		a.add(newScanners(cfg.Scanners, rs.Service, core.clock, core.log))
	}

	sc, err := newScenes(cfg, core, a.targets)
	if err != nil {
		return nil, err
	}
	a.add(sc)
	a.scenes = sc.Engine

	// The crew page last: its gate judges the checks of every part above.
	w, err := newWeb(cfg, core, a.router, a.preflightChecks)
	if err != nil {
		return nil, err
	}
	a.who = w.who
	a.add(w.preflight)
	a.checks = append(a.checks, w.authChecks...)
	a.add(w.server)

	a.checks = append(coreChecks(a.cfg, a), a.checks...)
	a.routes()
	a.registerMetrics()

	ln, err := net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		return nil, fmt.Errorf("http: listen on %s: %w (is another agent running? set http.listen or --http)", cfg.HTTP.Listen, err)
	}
	a.httpLn = ln
	a.closers = append(a.closers, func() error { return ignoreClosed(ln.Close()) })
	// The cap counts TCP connections, under TLS, so that half-open
	// handshakes count too.
	if a.httpLn, err = wrapTLS(cfg.HTTP, httpapi.LimitListener(ln, httpapi.DefaultLimits.MaxConns)); err != nil {
		return nil, err
	}
	built = true
	return a, nil
}

// preflightChecks are the checks the pre-show gate judges: every check
// but the manual sign-offs, read at each run.
func (a *app) preflightChecks(manual map[string]bool) []doctor.Check {
	out := make([]doctor.Check, 0, len(a.checks))
	for _, c := range a.checks {
		if !manual[c.Name] {
			out = append(out, c)
		}
	}
	return out
}

// plumbing is the shared plumbing every part may be given.
func (a *app) plumbing() plumbing {
	return plumbing{box: a.cfg.Box, dataDir: a.cfg.DataDir, log: a.log, clock: a.clock, bus: a.bus,
		mqtt: a.mqtt, health: a.health, metrics: a.metrics}
}

// plumbing is what the agent shares with its parts; each constructor
// passes on what its part needs.
type plumbing struct {
	box, dataDir string
	log          *slog.Logger
	clock        clock.Clock
	bus          *bus.Bus
	mqtt         *mqttc.Conn
	health       *health.Registry
	metrics      *prometheus.Registry
}

// whoIs names a request's caller for the record ("" before the auth is
// built, which serves no request).
func (a *app) whoIs(r *http.Request) string {
	if a.who == nil {
		return ""
	}
	return a.who(r)
}

func ignoreClosed(err error) error {
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

func (a *app) buildMQTT() error {
	m := a.cfg.MQTT
	o := mqttc.Options{URL: m.URL, ClientID: "fieldkit-" + a.cfg.Box, Username: m.Username, Prefix: m.Prefix, Log: a.log}
	if m.PasswordFile != "" {
		pw, err := secret.Read(m.PasswordFile)
		if err != nil {
			return fmt.Errorf("mqtt.password_file: %w", err)
		}
		o.Password = pw
	}
	if m.URL == "" {
		bo, err := brokerOptions(a.cfg, a.log)
		if err != nil {
			return err
		}
		// The embedded broker keeps the agent's client id to the agent;
		// with no account configured the agent logs in with a password
		// made for this run.
		if o.Username == "" {
			o.Username, o.Password = "fieldkit-agent", rand.Text()
		}
		bo.Reserve = &broker.Reserved{ClientID: o.ClientID, Username: o.Username, Password: o.Password}
		b, err := broker.New(bo)
		if err != nil {
			return err
		}
		a.broker = b
		// The broker is started before the parts and closed after them,
		// so that the agent's own "offline" reaches it on a clean stop.
		a.closers = append(a.closers, b.Close)
		o.URL = "tcp://" + b.Addr()
	}
	if m.CAFile != "" {
		pem, err := os.ReadFile(m.CAFile)
		if err != nil {
			return fmt.Errorf("mqtt.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("mqtt.ca_file %s: no PEM certificate in it", m.CAFile)
		}
		o.TLS = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	o.OnStatus = a.reportMQTT
	a.mqtt = mqttc.New(o)
	a.add(partFunc{name: "mqtt", run: a.mqtt.Run})
	a.add(partFunc{name: "mqtt-mirror", run: a.mirrorBus})
	return nil
}

// mirrorBus publishes every bus event on MQTT under the box prefix, so
// that alerts and button presses reach the venue's systems. Events are
// not queued while the broker is away: states that matter are retained
// and re-published on reconnect by their owners.
func (a *app) mirrorBus(ctx context.Context) error {
	sub := a.bus.Subscribe("#", 256)
	defer sub.Close()
	a.reportMQTT()
	// A duplicate box id is reported while the other agent keeps asking;
	// look again now and then so that it clears once it stops.
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			a.reportMQTT()
		case ev := <-sub.C():
			if !a.mqtt.Connected() {
				continue
			}
			// A state the agent keeps retained on MQTT already went out
			// with its owner's SetRetained; do not send it twice.
			if _, owned := a.mqtt.Retained(a.cfg.MQTT.Prefix + "/" + ev.Topic); owned {
				continue
			}
			if err := a.mqtt.Publish(ctx, a.cfg.MQTT.Prefix+"/"+ev.Topic, 1, false, ev.Payload); err != nil && ctx.Err() == nil {
				a.log.Debug("bus mirror publish failed", "topic", ev.Topic, "err", err)
			}
		}
	}
}

func (a *app) run(ctx context.Context) error {
	defer a.close()
	srv := httpapi.NewServer(a.router.Handler(), httpapi.DefaultLimits, a.log)
	a.add(partFunc{name: "http", critical: true, run: func(ctx context.Context) error {
		errc := make(chan error, 1)
		go func() { errc <- srv.Serve(a.httpLn) }()
		select {
		case err := <-errc:
			return fmt.Errorf("http: %w", err)
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
			return nil
		}
	}})
	a.add(partFunc{name: "watchdog", run: func(ctx context.Context) error {
		return a.notify.Watchdog(ctx, sdnotify.WatchdogInterval(), a.healthy)
	}})
	a.add(partFunc{name: "sighup", run: a.onSIGHUP})

	if a.broker != nil {
		if err := a.broker.Start(); err != nil {
			return err
		}
		a.health.Set("broker", health.OK, "embedded, "+a.broker.Addr())
	}
	a.log.Info("fieldkit agent starting", "version", versionLine(), "box", a.cfg.Box, "board", a.board.Profile().Name,
		"http", a.httpLn.Addr().String(), "config", cfgName(a.cfg))
	if a.cfg.File == "" {
		a.log.Info("no --config given: running the demo (sim board, embedded broker, fake printer)", "data", a.cfg.DataDir)
	}
	go func() {
		// READY once the listener is serving; the group is already running.
		if err := a.notify.Send("READY=1\nSTATUS=serving on " + a.httpLn.Addr().String()); err != nil {
			a.log.Warn("systemd notify failed", "err", err)
		}
	}()
	err := a.group.Run(ctx)
	_ = a.notify.Send("STOPPING=1")
	if err != nil {
		return err
	}
	a.log.Info("fieldkit agent stopped")
	return nil
}

func cfgName(c *config.Config) string {
	if c.File == "" {
		return "(demo)"
	}
	return c.File
}

// healthy is what the watchdog pings on: the agent's own loop answers and
// no critical part has failed.
func (a *app) healthy() bool {
	for _, p := range a.health.Snapshot() {
		if p.Name == "http" && p.State == health.Failed {
			return false
		}
	}
	return true
}

func (a *app) close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		if err := a.closers[i](); err != nil {
			a.log.Warn("closing", "err", err)
		}
	}
	a.closers = nil
}
