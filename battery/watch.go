package battery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"periph.io/x/conn/v3/i2c"

	"fieldkit/battery/source"
	"fieldkit/battery/source/nutsrc"
	"fieldkit/drivers/power"
	"fieldkit/internal/bus"
	"fieldkit/internal/clock"
	"fieldkit/internal/deps"
	"fieldkit/internal/mqttc"
	"fieldkit/internal/topic"
)

// Board hands out I2C buses by name.
type Board interface {
	I2C(bus string) (i2c.Bus, error)
}

// MQTT is the part of the agent's MQTT connection the watch uses.
type MQTT interface {
	Handle(filter string, h mqttc.Handler) error
	SetRetained(topic string, payload []byte)
	Prefix() string
}

// Deps are what the watch needs from the agent. Board is needed for I2C
// rigs, MQTT for MQTT rigs and for publishing state; Bus carries alerts.
type Deps struct {
	Box     string // box id, for Home Assistant ids
	Version string // agent version, for Home Assistant's device and origin blocks
	Board   Board
	MQTT    MQTT
	Bus     *bus.Bus
	Clock   clock.Clock
	Log     *slog.Logger
	Metrics prometheus.Registerer
}

// Sentinel errors from New.
var (
	ErrConfig = errors.New("battery: bad configuration")
	ErrDeps   = errors.New("battery: missing dependency")
)

// Watch is the battery watch part.
type Watch struct {
	d       Deps
	rigs    []*rig
	log     *slog.Logger
	metrics *metrics
	running atomic.Bool
}

// AlertTopic is the bus topic of a rig's alerts (mirrored to MQTT under
// the box prefix by the agent).
func AlertTopic(rig string) string { return topic.BatteryAlert(rig) }

// StateTopic is the retained MQTT topic of a rig's state.
func StateTopic(prefix, rig string) string { return topic.Under(prefix, topic.BatteryState(rig)) }

// Alert is the payload of battery/<rig>/alert.
type Alert struct {
	Rig     string   `json:"rig"`
	Level   string   `json:"level"` // ok, warn, critical, swap, stale
	Prev    string   `json:"prev"`
	Percent *float64 `json:"percent"`
	TTES    *int64   `json:"tte_s"`
	Source  string   `json:"source"`
	// Advice says what to do about the device's own flags (a UPS's LB,
	// RB, OVER), one sentence each.
	Advice []string  `json:"advice,omitempty"`
	At     time.Time `json:"at"`
}

// State is the retained state of one rig and the API's view of it.
type State struct {
	Rig         string     `json:"rig"`
	Percent     *float64   `json:"percent"`
	Volts       *float64   `json:"volts"`
	Watts       *float64   `json:"watts"`
	TTES        *int64     `json:"tte_s"`
	Level       string     `json:"level"`
	Source      string     `json:"source"`
	Updated     *time.Time `json:"updated"`
	Stale       bool       `json:"stale"`
	Calculating bool       `json:"calculating"`
	Status      string     `json:"status,omitempty"`
	Advice      []string   `json:"advice,omitempty"`
	Error       string     `json:"error,omitempty"`
}

type rig struct {
	cfg    Rig
	pack   power.Pack
	th     power.Thresholds
	src    source.Poller     // nil for a pushing source
	pusher source.Pusher     // nil for a polled source
	push   chan power.Sample // pushed samples into the loop
	est    *power.Estimator
	alarm  *power.Alarm
	w      *Watch
	pushed atomic.Uint64
	lost   atomic.Uint64

	mu         sync.Mutex
	state      State
	level      power.Level
	lastPub    time.Time
	lastPubKey string
	errCount   int
}

// board is b as a source.Board, nil when there is none (a nil *Sim
// must not become a non-nil interface).
func board(b Board) source.Board {
	if b == nil {
		return nil
	}
	return b
}

// New checks cfg and builds the watch; nothing is opened or started until Run.
func New(cfg Config, d Deps) (*Watch, error) {
	p := newProblems()
	cfg.Validate(p.Problems)
	if msg := p.String(); msg != "" {
		return nil, fmt.Errorf("%w: %s", ErrConfig, msg)
	}
	d.Clock, d.Log = deps.Clock(d.Clock), deps.Log(d.Log)
	w := &Watch{d: d, log: d.Log.With("part", "battery")}
	for _, rc := range cfg {
		pk, _ := rc.pack()
		est, err := power.NewEstimator(power.Options{Pack: pk, Tau: rc.Tau})
		if err != nil {
			return nil, fmt.Errorf("battery %s: %w", rc.Name, err)
		}
		r := &rig{cfg: rc, pack: pk, th: rc.thresholds(pk), est: est, w: w}
		r.alarm = power.NewAlarm(r.th)
		r.state = State{Rig: rc.Name, Level: power.Unknown.String(), Source: rc.Source}
		rd, err := rc.Settings.Open(source.Env{Kind: rc.Source, Rig: rc.Name, Board: board(d.Board), Clock: d.Clock, Pack: pk})
		if err != nil {
			return nil, fmt.Errorf("%w: rig %s %v", ErrDeps, rc.Name, err)
		}
		switch rd := rd.(type) {
		case source.Poller:
			r.src = rd
		case source.Pusher:
			if d.MQTT == nil {
				return nil, fmt.Errorf("%w: rig %s listens on MQTT but there is no MQTT connection", ErrDeps, rc.Name)
			}
			r.pusher = rd
			r.push = make(chan power.Sample, 16)
		default:
			return nil, fmt.Errorf("battery %s: source %s opened neither a poller nor a pusher", rc.Name, rc.Source)
		}
		w.rigs = append(w.rigs, r)
	}
	if d.Metrics != nil {
		m, err := newMetrics(d.Metrics)
		if err != nil {
			return nil, fmt.Errorf("battery: metrics: %w", err)
		}
		w.metrics = m
	}
	return w, nil
}

// Run watches every rig until ctx ends.
func (w *Watch) Run(ctx context.Context) error {
	if !w.running.CompareAndSwap(false, true) {
		return errors.New("battery: Run called twice")
	}
	if w.d.MQTT != nil {
		w.announce()
		if err := w.cleanup(); err != nil {
			return fmt.Errorf("battery: watch Home Assistant configs: %w", err)
		}
	}
	for _, r := range w.rigs {
		if r.push == nil {
			continue
		}
		r := r
		err := w.d.MQTT.Handle(r.pusher.Topic(), func(ctx context.Context, m mqttc.Message) error {
			smp, err := r.pusher.Parse(w.d.Clock.Now(), m.Payload)
			if err != nil {
				return fmt.Errorf("battery %s: %w", r.cfg.Name, err)
			}
			select {
			case r.push <- smp:
				r.pushed.Add(1)
			default:
				r.lost.Add(1) // a device flooding its topic must not block the connection
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("battery %s: subscribe %s: %w", r.cfg.Name, r.pusher.Topic(), err)
		}
	}
	var wg sync.WaitGroup
	for _, r := range w.rigs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.loop(ctx)
		}()
	}
	wg.Wait()
	for _, r := range w.rigs {
		if r.src != nil {
			if err := r.src.Close(); err != nil {
				w.log.Warn("closing battery source", "rig", r.cfg.Name, "err", err)
			}
		}
	}
	return nil
}

// loop is the one goroutine that owns the rig's estimator and alarm.
func (r *rig) loop(ctx context.Context) {
	clk := r.w.d.Clock
	stale := clk.NewTimer(r.cfg.staleAfter())
	defer stale.Stop()
	var pollC <-chan time.Time
	if r.src != nil {
		r.pollOnce(ctx, stale)
		t := clk.NewTimer(r.cfg.poll())
		defer t.Stop()
		pollC = t.C()
		for {
			select {
			case <-ctx.Done():
				return
			case <-pollC:
				r.pollOnce(ctx, stale)
				t.Reset(r.cfg.poll())
			case <-stale.C():
				r.markStale()
			}
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case smp := <-r.push:
			r.ingest(smp)
			stale.Reset(r.cfg.staleAfter())
		case <-stale.C():
			r.markStale()
		}
	}
}

func (r *rig) pollOnce(ctx context.Context, stale clock.Timer) {
	pctx, cancel := context.WithTimeout(ctx, max(r.cfg.poll(), 2*time.Second))
	smp, err := r.src.Poll(pctx)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		r.mu.Lock()
		r.errCount++
		first := r.errCount == 1
		r.state.Error = err.Error()
		r.mu.Unlock()
		if r.w.metrics != nil {
			r.w.metrics.errors.WithLabelValues(r.cfg.Name).Inc()
		}
		if first {
			r.w.log.Warn("battery source failed; retrying every poll", "rig", r.cfg.Name, "source", r.cfg.Source, "err", err)
		}
		return
	}
	r.mu.Lock()
	if r.errCount > 0 {
		r.w.log.Info("battery source is back", "rig", r.cfg.Name, "after_errors", r.errCount)
	}
	r.errCount = 0
	r.state.Error = ""
	r.mu.Unlock()
	r.ingest(smp)
	stale.Reset(r.cfg.staleAfter())
}

func (r *rig) ingest(smp power.Sample) {
	e := r.est.Update(smp)
	r.mu.Lock()
	wasStale := r.state.Stale
	r.mu.Unlock()
	if wasStale {
		r.alarm.Reset() // judge afresh: the pack may have been changed meanwhile
	}
	lvl, changed := r.alarm.Update(e)

	r.mu.Lock()
	prev := r.state.Level
	if wasStale {
		prev = "stale"
	}
	st := r.state
	st.Percent = round(e.Percent, 1)
	st.Volts = round(e.Volts, 2)
	st.Watts = round(e.Watts, 1)
	st.TTES = nil
	if e.TTEKnown && !e.Calculating {
		s := int64(e.TTE / time.Second)
		st.TTES = &s
	}
	st.Calculating = e.Calculating
	st.Status = e.Status
	prevAdvice := strings.Join(st.Advice, "\n")
	st.Advice = nil
	if r.cfg.Source == KindNUT {
		_, _, st.Advice = nutsrc.Verdict(e.Status)
	}
	newAdvice := strings.Join(st.Advice, "\n") != prevAdvice
	at := smp.At.UTC()
	st.Updated = &at
	st.Stale = false
	st.Level = lvl.String()
	r.state = st
	r.level = lvl
	r.mu.Unlock()

	// A first verdict of ok is not news; anything else is.
	// A new piece of advice (the UPS went on battery, or overloaded) is
	// news even when the level stays where it was.
	if changed && !(prev == power.Unknown.String() && lvl == power.OK) || wasStale || (newAdvice && len(st.Advice) > 0) {
		r.alert(prev, st)
	}
	r.publish(st, changed || wasStale || newAdvice)
	r.w.observe(st, lvl)
}

func (r *rig) markStale() {
	r.mu.Lock()
	if r.state.Stale {
		r.mu.Unlock()
		return
	}
	prev := r.state.Level
	r.state.Stale = true
	r.state.TTES = nil
	st := r.state
	st.Level = "stale"
	r.mu.Unlock()
	r.w.log.Warn("battery source stopped reporting", "rig", r.cfg.Name, "after", r.cfg.staleAfter())
	r.alert(prev, st)
	r.publish(st, true)
	r.w.observe(st, power.Unknown)
}

func (r *rig) alert(prev string, st State) {
	a := Alert{Rig: st.Rig, Level: st.Level, Prev: prev, Percent: st.Percent, TTES: st.TTES, Source: st.Source, Advice: st.Advice, At: r.w.d.Clock.Now().UTC()}
	b, _ := json.Marshal(a)
	r.w.log.Info("battery level changed", "rig", st.Rig, "level", st.Level, "prev", prev)
	if r.w.d.Bus != nil {
		r.w.d.Bus.Publish(AlertTopic(st.Rig), b)
	}
}

// publish sets the retained state, at once on a level change and at most
// every 5 s otherwise, so a 2 s poll does not flood the broker.
func (r *rig) publish(st State, now bool) {
	if r.w.d.MQTT == nil {
		return
	}
	b, _ := json.Marshal(st)
	key := st.Level
	if st.Stale {
		key = "stale"
	}
	r.mu.Lock()
	t := r.w.d.Clock.Now()
	due := now || key != r.lastPubKey || t.Sub(r.lastPub) >= 5*time.Second || r.lastPub.IsZero()
	if due {
		r.lastPub, r.lastPubKey = t, key
	}
	r.mu.Unlock()
	if due {
		r.w.d.MQTT.SetRetained(StateTopic(r.w.d.MQTT.Prefix(), st.Rig), b)
	}
}

func (r *rig) snapshot() State {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.state
	if st.Stale {
		st.Level = "stale"
	}
	return st
}

// States returns every rig's state, in config order.
func (w *Watch) States() []State {
	out := make([]State, 0, len(w.rigs))
	for _, r := range w.rigs {
		out = append(out, r.snapshot())
	}
	return out
}

func round(v float64, places int) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	p := math.Pow(10, float64(places))
	x := math.Round(v*p) / p
	return &x
}
