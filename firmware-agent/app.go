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
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"fieldkit/boards"
	"fieldkit/drivers/cue"
	"fieldkit/internal/broker"
	"fieldkit/internal/bus"
	"fieldkit/internal/clock"
	"fieldkit/internal/config"
	"fieldkit/internal/doctor"
	"fieldkit/internal/health"
	"fieldkit/internal/httpapi"
	"fieldkit/internal/lifecycle"
	"fieldkit/internal/mqttc"
	"fieldkit/internal/sdnotify"
	"fieldkit/printer/service"
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
	// targets are the cue outputs by name, for the scene engine.
	targets map[string]cue.Target
	// printerSvc is the label printers, for pickup labels of receipts.
	printerSvc *service.Service
	checks     []doctor.Check
	status     map[string]func() any
	// reload hooks run on SIGHUP.
	reload  []func() error
	closers []func() error
}

// partBuilders add the parts; each part_*.go file appends its own.
var partBuilders []func(ctx context.Context, a *app) error

// newApp builds everything; on error it releases whatever was built, so a
// failed start leaves no port bound and no device held.
func newApp(ctx context.Context, cfg *config.Config, log *slog.Logger) (*app, error) {
	a := &app{
		cfg: cfg, log: log, clock: clock.Real(), bus: bus.New(log),
		health: health.NewRegistry(), metrics: prometheus.NewRegistry(),
		notify: sdnotify.FromEnv(), started: time.Now(), status: map[string]func() any{},
	}
	built := false
	defer func() {
		if !built {
			a.close()
		}
	}()
	a.group = lifecycle.Group{Health: a.health, Log: log}
	a.metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a.router = httpapi.NewRouter(httpapi.OpenAuth{}, log)

	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("data dir %s: %w", cfg.DataDir, err)
	}
	board, err := boards.Open(boards.Options{Name: cfg.Board, Pins: cfg.Pins})
	if err != nil {
		return nil, err
	}
	a.board = board
	a.closers = append(a.closers, a.board.Close)
	a.health.Set("board", health.OK, a.board.Profile().Name)

	if err := a.buildMQTT(); err != nil {
		return nil, err
	}
	for _, b := range partBuilders {
		if err := b(ctx, a); err != nil {
			return nil, err
		}
	}
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

func ignoreClosed(err error) error {
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

func (a *app) buildMQTT() error {
	m := a.cfg.MQTT
	url := m.URL
	o := mqttc.Options{URL: url, ClientID: "fieldkit-" + a.cfg.Box, Username: m.Username, Prefix: m.Prefix, Log: a.log}
	if m.PasswordFile != "" {
		pw, err := config.ReadSecret(m.PasswordFile)
		if err != nil {
			return fmt.Errorf("mqtt.password_file: %w", err)
		}
		o.Password = pw
	}
	if url == "" {
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
	a.group.Add(lifecycle.Part{Name: "mqtt", Run: a.mqtt.Run})
	a.group.Add(lifecycle.Part{Name: "mqtt-mirror", Run: a.mirrorBus})
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

// addPart is how part_*.go files register a long-running part.
func (a *app) addPart(name string, critical bool, run func(ctx context.Context) error) {
	a.group.Add(lifecycle.Part{Name: name, Critical: critical, Run: run})
}

func (a *app) run(ctx context.Context) error {
	defer a.close()
	srv := httpapi.NewServer(a.router.Handler(), httpapi.DefaultLimits, a.log)
	a.group.Add(lifecycle.Part{Name: "http", Critical: true, Run: func(ctx context.Context) error {
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
	a.group.Add(lifecycle.Part{Name: "watchdog", Run: func(ctx context.Context) error {
		return a.notify.Watchdog(ctx, sdnotify.WatchdogInterval(), a.healthy)
	}})
	a.group.Add(lifecycle.Part{Name: "sighup", Run: a.onSIGHUP})

	if a.broker != nil {
		if err := a.broker.Start(); err != nil {
			return err
		}
		a.health.Set("broker", health.OK, "embedded, "+a.broker.Addr())
	}
	a.log.Info("fieldkit agent starting", "version", version, "box", a.cfg.Box, "board", a.board.Profile().Name,
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
