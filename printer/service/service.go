package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"fieldkit/internal/bus"
	"fieldkit/internal/clock"
	"fieldkit/internal/confutil"
	"fieldkit/internal/deps"
	"fieldkit/internal/httpapi"
	"fieldkit/internal/mqttc"
	"fieldkit/internal/topic"
	"fieldkit/printer/fake"
	"fieldkit/printer/label"
	"fieldkit/printer/lang"
	"fieldkit/printer/queue"
	"fieldkit/printer/template"
	"fieldkit/printer/transport"
)

// MQTT is the part of the agent's MQTT connection the service uses.
type MQTT interface {
	Handle(filter string, h mqttc.Handler) error
	SetRetained(topic string, payload []byte)
	Prefix() string
}

// Deps are what the service needs from the agent. MQTT and Metrics may be
// nil (the CLI, tests).
type Deps struct {
	DataDir string
	Bus     *bus.Bus
	MQTT    MQTT
	Clock   clock.Clock
	Log     *slog.Logger
	Metrics prometheus.Registerer
}

// Errors, for errors.Is.
var (
	ErrConfig         = errors.New("printers: bad configuration")
	ErrDeps           = errors.New("printers: missing dependency")
	ErrUnknownPrinter = errors.New("no such printer")
	ErrBadRequest     = errors.New("bad print request")
)

// DBFile is the queue's file under the data dir.
const DBFile = "printer.db"

// StateTopic is the bus topic (and, under the MQTT prefix, the retained
// topic) of a printer's state.
func StateTopic(name string) string { return topic.PrinterState(name) }

// AlertTopic is the bus topic of a printer's job alerts.
func AlertTopic(name string) string { return topic.PrinterAlert(name) }

// Service is the printer part.
type Service struct {
	d       Deps
	log     *slog.Logger
	store   *queue.Store
	workers map[string]*worker
	names   []string
	fakes   map[string]*fake.Printer
	closers []func() error

	closeOnce sync.Once
	closeErr  error
}

// New validates cfg, opens the queue and prepares one worker per printer.
// Nothing is opened on the printers until Run.
func New(cfg Config, d Deps) (*Service, error) {
	if d.DataDir == "" || d.Bus == nil {
		return nil, fmt.Errorf("%w: DataDir and Bus are required", ErrDeps)
	}
	d.Clock, d.Log = deps.Clock(d.Clock), deps.Log(d.Log)
	p := confutil.NewProblems()
	cfg.Validate(p)
	if !p.Empty() {
		var lines []string
		for _, pr := range p.List() {
			lines = append(lines, pr.Path+": "+pr.Msg)
		}
		return nil, fmt.Errorf("%w: %s", ErrConfig, strings.Join(lines, "; "))
	}
	s := &Service{d: d, log: d.Log.With("part", "printers"), workers: map[string]*worker{}, fakes: map[string]*fake.Printer{}}
	st, err := queue.Open(filepath.Join(d.DataDir, DBFile), d.Clock)
	if err != nil {
		return nil, err
	}
	s.store = st
	m := newMetrics(d.Metrics)
	for name := range cfg {
		s.names = append(s.names, name)
	}
	sort.Strings(s.names)
	for _, name := range s.names {
		pc := cfg[name].withDefaults()
		w, err := s.newWorker(name, pc, m)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.workers[name] = w
	}
	return s, nil
}

func (s *Service) newWorker(name string, pc Printer, m *metrics) (*worker, error) {
	probes, err := lang.Probes(pc.Language)
	if err != nil {
		return nil, fmt.Errorf("printer %s: %w", name, err)
	}
	w := &worker{
		name: name, cfg: pc, probe: probes, store: s.store, clk: s.d.Clock, m: m,
		log:  s.log.With("printer", name),
		wake: make(chan struct{}, 1),
		pub:  func(st PrinterState) { s.publish(st) },
		alert: func(a Alert) {
			s.d.Bus.Publish(AlertTopic(a.Printer), alertJSON(a))
		},
	}
	w.st = PrinterState{Name: name, Language: string(pc.Language), Transport: pc.Transport}
	o := &transport.Opts{Path: pc.Path, Baud: pc.Baud, Log: w.log}
	switch pc.Transport {
	case "serial":
		o.Kind = transport.Serial
	case "usb":
		o.Kind = transport.USB
	case "tcp":
		o.Kind, o.Path = transport.TCP, pc.Address
	case "fake":
		addr, err := s.startFake(name, pc)
		if err != nil {
			return nil, err
		}
		o.Kind, o.Path, o.Baud = transport.TCP, addr, 0
	}
	port, err := transport.New(o)
	if err != nil {
		return nil, fmt.Errorf("printer %s: %w", name, err)
	}
	s.closers = append(s.closers, port.Close)
	w.tr, w.dev = port, port.Device
	return w, nil
}

// startFake runs an in-process printer on a loopback TCP port, writing a
// PNG of every label under <data dir>/previews/<name>.
func (s *Service) startFake(name string, pc Printer) (string, error) {
	dir := filepath.Join(s.d.DataDir, "previews", name)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", fmt.Errorf("printer %s: %w", name, err)
	}
	fp, err := fake.New(&fake.Opts{Lang: string(pc.Language), WidthDots: pc.WidthDots, Baud: pc.Baud, BufferBytes: 64 << 10, OutDir: dir})
	if err != nil {
		return "", fmt.Errorf("printer %s: %w", name, err)
	}
	addr, err := fp.ListenTCP("127.0.0.1:0")
	if err != nil {
		fp.Close()
		return "", fmt.Errorf("printer %s: %w", name, err)
	}
	s.fakes[name] = fp
	s.closers = append(s.closers, fp.Close)
	s.log.Info("fake printer ready; label previews go to "+dir, "printer", name, "addr", addr)
	return addr, nil
}

// Fake returns the in-process printer behind a transport: fake printer,
// for the demo and tests to script (paper out, ...).
func (s *Service) Fake(name string) (*fake.Printer, bool) {
	fp, ok := s.fakes[name]
	return fp, ok
}

// Names lists the configured printers.
func (s *Service) Names() []string { return append([]string(nil), s.names...) }

// Store is the job queue, for the CLI and tests.
func (s *Service) Store() *queue.Store { return s.store }

// Run recovers jobs a previous run left printing, serves MQTT print
// requests and runs the workers until ctx ends; then it closes the
// printers and the queue.
func (s *Service) Run(ctx context.Context) error {
	defer s.Close()
	req, unc, err := s.store.Recover(ctx)
	if err != nil {
		return err
	}
	if req+unc > 0 {
		s.log.Warn("recovered print jobs from the last run", "requeued", req, "uncertain", unc)
	}
	if s.d.MQTT != nil {
		if err := s.d.MQTT.Handle(topic.Under(s.d.MQTT.Prefix(), topic.PrinterPrint("+")), s.handleMQTT); err != nil {
			return fmt.Errorf("printers: %w", err)
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, name := range s.names {
		w := s.workers[name]
		g.Go(func() error { return w.run(gctx) })
	}
	return g.Wait()
}

// Close releases printers and the queue; Run calls it on return, and a
// caller that never ran the service must.
func (s *Service) Close() error {
	s.closeOnce.Do(func() {
		var errs []error
		for i := len(s.closers) - 1; i >= 0; i-- {
			errs = append(errs, s.closers[i]())
		}
		if s.store != nil {
			errs = append(errs, s.store.Close())
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

func (s *Service) publish(st PrinterState) {
	b, _ := json.Marshal(st)
	s.d.Bus.Publish(StateTopic(st.Name), b)
	if s.d.MQTT != nil {
		s.d.MQTT.SetRetained(s.d.MQTT.Prefix()+"/"+StateTopic(st.Name), b)
	}
}

// States returns every printer's state, by name.
func (s *Service) States() []PrinterState {
	out := make([]PrinterState, 0, len(s.names))
	for _, n := range s.names {
		out = append(out, s.workers[n].state())
	}
	return out
}

// JobRequest is what POST /api/printers/{name}/jobs and the MQTT print
// topic take: a label, or the data of the pickup template (whose order
// and buyer, or "discreet", the queue then shows).
//
//	{"id": "A-1042", "label": {"elements": [...]}}
//	{"id": "A-1042", "pickup": {"order": "A-1042", "items": [...], ...}}
//
// The id is optional; the same id twice is one job.
type JobRequest struct {
	ID     string          `json:"id,omitempty"`
	Label  json.RawMessage `json:"label,omitempty"`
	Pickup json.RawMessage `json:"pickup,omitempty"`
}

// Submit validates r for printer and queues it. created is false when a
// job with the same id already existed (it is returned instead).
func (s *Service) Submit(ctx context.Context, printer string, r JobRequest) (queue.Job, bool, error) {
	w, ok := s.workers[printer]
	if !ok {
		return queue.Job{}, false, fmt.Errorf("%w %q; configured: %s", ErrUnknownPrinter, printer, strings.Join(s.names, ", "))
	}
	var (
		l    label.Label
		meta queue.NewJob // what the queue shows: order, buyer
	)
	switch {
	case len(r.Label) > 0 && len(r.Pickup) > 0:
		return queue.Job{}, false, fmt.Errorf("%w: give either label or pickup, not both", ErrBadRequest)
	case len(r.Label) > 0:
		var err error
		if l, err = label.Decode(r.Label); err != nil {
			return queue.Job{}, false, fmt.Errorf("%w: %v", ErrBadRequest, err)
		}
	case len(r.Pickup) > 0:
		p, err := template.DecodePickup(r.Pickup)
		if err == nil {
			l, err = template.Render(p, w.cfg.Profile)
			meta.Order, meta.Buyer, meta.Discreet = p.Order, p.Buyer, p.Discreet
		}
		if err != nil {
			return queue.Job{}, false, fmt.Errorf("%w: %v", ErrBadRequest, err)
		}
	default:
		return queue.Job{}, false, fmt.Errorf("%w: give label (a label) or pickup (pickup label data)", ErrBadRequest)
	}
	// Refuse now what the printer could never print, rather than fail it
	// later in the queue.
	enc, err := lang.Render(l, w.cfg.Profile)
	if err != nil {
		return queue.Job{}, false, fmt.Errorf("%w: printer %s cannot print this label: %v", ErrBadRequest, printer, err)
	}
	id := r.ID
	if id == "" {
		id = l.ID
	}
	body, err := json.Marshal(l)
	if err != nil {
		return queue.Job{}, false, fmt.Errorf("printers: %w", err)
	}
	j, created, err := s.store.Add(ctx, queue.NewJob{ID: id, Printer: printer, Label: body,
		Order: meta.Order, Buyer: meta.Buyer, Discreet: meta.Discreet})
	if err != nil {
		return j, false, err
	}
	j.Warnings = enc.Warnings
	if created {
		s.log.Info("print job queued", "printer", printer, "job", j.ID, "warnings", len(j.Warnings))
		w.update(ctx, func(*PrinterState) {})
		w.notify()
	}
	return j, created, nil
}

// withWarnings fills in what of a job's label will not print as asked
// on its printer.
func (s *Service) withWarnings(j queue.Job) queue.Job {
	w, ok := s.workers[j.Printer]
	if !ok {
		return j
	}
	l, err := label.Decode(j.Label)
	if err != nil {
		return j
	}
	if enc, err := lang.Render(l, w.cfg.Profile); err == nil {
		j.Warnings = enc.Warnings
	}
	return j
}

// Reprint queues job id again on the operator's word (see queue.Reprint).
func (s *Service) Reprint(ctx context.Context, id string) (queue.Job, error) {
	j, err := s.store.Reprint(ctx, id, "")
	if err != nil {
		return j, err
	}
	if w, ok := s.workers[j.Printer]; ok {
		w.update(ctx, func(*PrinterState) {})
		w.notify()
	}
	return j, nil
}

// Cancel drops a job that has not printed.
func (s *Service) Cancel(ctx context.Context, id string) (queue.Job, error) {
	j, err := s.store.Cancel(ctx, id)
	if err != nil {
		return j, err
	}
	if w, ok := s.workers[j.Printer]; ok {
		w.update(ctx, func(*PrinterState) {})
	}
	return j, nil
}

// handleMQTT takes <prefix>/printer/<name>/print.
func (s *Service) handleMQTT(ctx context.Context, m mqttc.Message) error {
	rest := strings.TrimPrefix(m.Topic, s.d.MQTT.Prefix()+"/printer/")
	name, ok := strings.CutSuffix(rest, "/print")
	if !ok || name == "" || strings.Contains(name, "/") {
		return fmt.Errorf("topic %s: expected %s/printer/<name>/print", m.Topic, s.d.MQTT.Prefix())
	}
	var r JobRequest
	if err := httpapi.DecodeStrict(m.Payload, &r); err != nil {
		return fmt.Errorf("printer %s: %w", name, err)
	}
	if _, _, err := s.Submit(ctx, name, r); err != nil {
		return fmt.Errorf("printer %s: %w", name, err)
	}
	return nil
}

type metrics struct {
	jobs    *prometheus.CounterVec
	depth   *prometheus.GaugeVec
	ready   *prometheus.GaugeVec
	seconds *prometheus.HistogramVec
}

func newMetrics(r prometheus.Registerer) *metrics {
	m := &metrics{
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fieldkit_printer_jobs_total", Help: "Print jobs finished, by printer and outcome (done, failed, uncertain).",
		}, []string{"printer", "result"}),
		depth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "fieldkit_printer_queue_depth", Help: "Jobs waiting or printing, by printer.",
		}, []string{"printer"}),
		ready: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "fieldkit_printer_ready", Help: "1 when the printer's last status allowed printing.",
		}, []string{"printer"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "fieldkit_printer_job_seconds", Help: "From the start of a job's attempt to its confirmation.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 10),
		}, []string{"printer"}),
	}
	if r != nil {
		for _, c := range []prometheus.Collector{m.jobs, m.depth, m.ready, m.seconds} {
			if err := r.Register(c); err != nil {
				var are prometheus.AlreadyRegisteredError
				if !errors.As(err, &are) {
					slog.Default().Warn("printer metrics not registered", "err", err)
				}
			}
		}
	}
	return m
}
