package scenes

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"fieldkit/drivers/cue"
	"fieldkit/internal/bus"
	"fieldkit/internal/clock"
	"fieldkit/internal/deps"
	"fieldkit/internal/health"
	"fieldkit/internal/mqttc"
)

// MQTT is what the engine needs of the agent's MQTT connection
// (*mqttc.Conn has it). Topics are absolute.
type MQTT interface {
	Handle(filter string, h mqttc.Handler) error
	Publish(ctx context.Context, topic string, qos byte, retained bool, payload []byte) error
	SetRetained(topic string, payload []byte)
	DropRetained(topic string)
	Prefix() string
}

// Deps are the engine's collaborators. Targets is required; the rest may
// be nil (no MQTT: no MQTT triggers, state topics or publish steps work;
// no Bus: no button or event triggers).
type Deps struct {
	Targets map[string]cue.Target
	MQTT    MQTT
	Bus     *bus.Bus
	Clock   clock.Clock
	Log     *slog.Logger
	Metrics prometheus.Registerer
	// HTTP posts webhooks; nil means a client with no overall timeout
	// (each webhook step brings its own).
	HTTP   *http.Client
	Health *health.Registry
	// Files, when set, is read instead of Config.Dir: the demo passes the
	// embedded example scenes here. FilesName names it in messages.
	Files     fs.FS
	FilesName string
}

// Sentinel errors of Fire and Cancel.
var (
	ErrUnknownScene = errors.New("no such scene")
	ErrBusy         = errors.New("scene is running and its policy is ignore")
	ErrQueueFull    = errors.New("scene queue is full")
	ErrNotRunning   = errors.New("scene engine is not running")
	ErrNoTargets    = errors.New("scenes: Deps.Targets is nil")
)

// Engine loads scenes, listens for their triggers and runs them.
type Engine struct {
	cfg    Config
	d      Deps
	log    *slog.Logger
	clk    clock.Clock
	prefix string
	fsys   fs.FS
	label  string
	met    *metrics

	rtRefused sync.Once // logs once that timelines cannot be real-time

	set atomic.Pointer[Set]

	mu       sync.Mutex
	slots    map[string]*slot
	loadErr  string
	loadedAt time.Time
	reloads  int
	ctx      context.Context // Run's; nil before Run and after it ends
	stopped  bool
	runID    uint64
	states   []stateMsg
	filters  map[string]bool // MQTT trigger filters handled so far
	subs     map[string]*bus.Subscription

	stateWake chan struct{}
	schedWake chan struct{}
	runs      sync.WaitGroup // run goroutines
	loops     sync.WaitGroup // bus subscription readers
}

// slot is the runtime state of one scene name; it outlives reloads so
// that a running scene keeps its state and queue.
type slot struct {
	name    string
	cur     *run
	queue   []fireReq
	status  Status
	last    *RunRecord
	removed bool // gone from the set; dropped when its run ends
}

type fireReq struct {
	source  string
	payload []byte
}

type run struct {
	id     uint64
	sc     *Scene
	fire   fireReq
	ctx    context.Context
	cancel context.CancelFunc
	why    string // why it was cancelled
	fired  time.Time
	done   chan struct{}
	rec    *RunRecord // guarded by Engine.mu
}

type stateMsg struct {
	name    string
	payload []byte // nil: drop the retained state
}

// New loads the scenes and prepares the engine; nothing listens until Run.
// A bad scene set is an error here (file:line for each problem): the agent
// must not start a show with a typo accepted.
func New(cfg Config, d Deps) (*Engine, error) {
	if d.Targets == nil {
		return nil, ErrNoTargets
	}
	d.Clock, d.Log = deps.Clock(d.Clock), deps.Log(d.Log)
	if d.HTTP == nil {
		d.HTTP = &http.Client{}
	}
	e := &Engine{
		cfg: cfg, d: d, log: d.Log.With("part", "scenes"), clk: d.Clock,
		slots: map[string]*slot{}, filters: map[string]bool{}, subs: map[string]*bus.Subscription{},
		stateWake: make(chan struct{}, 1), schedWake: make(chan struct{}, 1),
	}
	if d.MQTT != nil {
		e.prefix = d.MQTT.Prefix()
	}
	switch {
	case d.Files != nil:
		e.fsys, e.label = d.Files, d.FilesName
		if e.label == "" {
			e.label = "scenes"
		}
	case cfg.Dir != "":
		e.fsys, e.label = os.DirFS(cfg.Dir), cfg.Dir
	}
	met, err := newMetrics(d.Metrics)
	if err != nil {
		return nil, fmt.Errorf("scenes: metrics: %w", err)
	}
	e.met = met
	if e.fsys == nil {
		e.set.Store(&Set{byName: map[string]*Scene{}})
		e.setHealth()
		return e, nil
	}
	if err := e.Reload(); err != nil {
		return nil, err
	}
	return e, nil
}

// Reload reads the scene files again. The new set is validated first and
// swapped in whole; when it is bad the old set stays and the error is kept
// for the status API. Running scenes finish the run they started, on the
// definition they started with.
func (e *Engine) Reload() error {
	if e.fsys == nil {
		return fmt.Errorf("scenes: no scenes directory configured (scenes.dir)")
	}
	set, err := Load(e.fsys, e.label, e.d.Targets, e.prefix)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.reloads++
	if err != nil {
		e.loadErr = err.Error()
		e.met.configOK.Set(0)
		e.log.Error("scene files refused; keeping the scenes loaded before", "dir", e.label, "err", err)
		e.setHealthLocked()
		return err
	}
	e.set.Store(set)
	e.loadErr = ""
	e.loadedAt = e.clk.Now()
	e.met.configOK.Set(1)
	for name, s := range e.slots {
		if _, ok := set.Get(name); ok {
			continue
		}
		if s.cur != nil {
			s.removed = true
			s.queue = nil
			continue
		}
		delete(e.slots, name)
		e.pushStateLocked(stateMsg{name: name})
	}
	for _, sc := range set.Scenes {
		s, ok := e.slots[sc.Name]
		if !ok {
			s = &slot{name: sc.Name}
			e.slots[sc.Name] = s
			e.setStatusLocked(s, Status{State: StateIdle, Steps: len(sc.Steps)})
		}
		s.removed = false
	}
	e.log.Info("scenes loaded", "dir", e.label, "scenes", len(set.Scenes))
	e.setHealthLocked()
	if e.ctx != nil {
		e.syncTriggersLocked()
	}
	return nil
}

// Run listens for triggers and runs scenes until ctx ends; then running
// scenes are cancelled and their final state published.
func (e *Engine) Run(ctx context.Context) error {
	e.mu.Lock()
	if e.ctx != nil || e.stopped {
		e.mu.Unlock()
		return errors.New("scenes: Run called twice")
	}
	e.ctx = ctx
	if e.d.MQTT != nil {
		for _, h := range []struct {
			verb string
			f    mqttc.Handler
		}{{"run", e.onRunTopic}, {"cancel", e.onCancelTopic}} {
			if err := e.d.MQTT.Handle(e.prefix+"/scene/+/"+h.verb, h.f); err != nil {
				e.ctx = nil
				e.mu.Unlock()
				return fmt.Errorf("scenes: mqtt %s topic: %w", h.verb, err)
			}
		}
	}
	e.syncTriggersLocked()
	e.mu.Unlock()

	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); e.scheduleLoop(ctx) }()
	stateDone := make(chan struct{})
	go func() { defer wg.Done(); e.stateLoop(stateDone) }()

	<-ctx.Done()
	e.mu.Lock()
	e.stopped = true
	for _, s := range e.slots {
		s.queue = nil
		if s.cur != nil {
			s.cur.why = "the agent is stopping"
			s.cur.cancel()
		}
	}
	for f, sub := range e.subs {
		sub.Close()
		delete(e.subs, f)
	}
	e.mu.Unlock()
	e.runs.Wait()
	e.loops.Wait()
	close(stateDone)
	wg.Wait()
	e.mu.Lock()
	e.ctx = nil
	e.mu.Unlock()
	return nil
}

// Outcome is what Fire did.
type Outcome string

const (
	Started   Outcome = "started"
	Restarted Outcome = "restarted"
	Queued    Outcome = "queued"
)

// Fire runs scene name now, or as its policy says when it is running.
// source says who fired it (for the record); payload is the triggering
// message's, sent on by passthrough publish steps.
func (e *Engine) Fire(name, source string, payload []byte) (Outcome, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ctx == nil || e.stopped {
		return "", ErrNotRunning
	}
	sc, ok := e.set.Load().Get(name)
	if !ok {
		return "", fmt.Errorf("scene %q: %w (have: %v)", name, ErrUnknownScene, e.set.Load().Names())
	}
	s := e.slots[name]
	f := fireReq{source: source, payload: payload}
	if s.cur == nil {
		e.startLocked(s, sc, f, nil)
		return Started, nil
	}
	switch sc.Policy {
	case Restart:
		prev := s.cur
		prev.why = "restarted by " + source
		prev.cancel()
		e.startLocked(s, sc, f, prev)
		return Restarted, nil
	case Queue:
		if len(s.queue) >= e.cfg.queueLimit() {
			return "", fmt.Errorf("scene %q: %w (%d waiting)", name, ErrQueueFull, len(s.queue))
		}
		s.queue = append(s.queue, f)
		e.setStatusLocked(s, s.status) // publishes the queue length
		return Queued, nil
	default:
		return "", fmt.Errorf("scene %q: %w", name, ErrBusy)
	}
}

// Cancel stops scene name if it is running and drops its queued fires.
// It reports whether anything was stopped.
func (e *Engine) Cancel(name, source string) (bool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s, ok := e.slots[name]
	if !ok {
		return false, fmt.Errorf("scene %q: %w (have: %v)", name, ErrUnknownScene, e.set.Load().Names())
	}
	had := len(s.queue) > 0
	s.queue = nil
	if s.cur != nil {
		if s.cur.ctx.Err() == nil {
			s.cur.why = "cancelled by " + source
			s.cur.cancel()
		}
		return true, nil
	}
	return had, nil
}

// startLocked starts a run of sc; it begins once prev (if any) has ended.
func (e *Engine) startLocked(s *slot, sc *Scene, f fireReq, prev *run) {
	e.runID++
	ctx, cancel := context.WithCancel(e.ctx)
	r := &run{id: e.runID, sc: sc, fire: f, ctx: ctx, cancel: cancel, done: make(chan struct{}), fired: e.clk.Now()}
	r.rec = newRecord(r)
	s.cur = r
	e.runs.Add(1)
	go e.execute(s, r, prev)
}

func (e *Engine) setStatusLocked(s *slot, st Status) {
	st.Scene = s.name
	st.Queued = len(s.queue)
	if st.State != s.status.State || st.Step != s.status.Step || st.Run != s.status.Run {
		st.Since = e.clk.Now()
	} else {
		st.Since = s.status.Since
	}
	s.status = st
	e.pushStateLocked(stateMsg{name: s.name, payload: st.json()})
}

func (e *Engine) pushStateLocked(m stateMsg) {
	e.states = append(e.states, m)
	select {
	case e.stateWake <- struct{}{}:
	default:
	}
}

// stateLoop publishes state changes in order, off the timeline goroutines,
// so that a slow broker never delays a cue.
func (e *Engine) stateLoop(done <-chan struct{}) {
	for {
		e.mu.Lock()
		batch := e.states
		e.states = nil
		e.mu.Unlock()
		for _, m := range batch {
			t := "scene/" + m.name + "/state"
			if m.payload == nil {
				if e.d.MQTT != nil {
					e.d.MQTT.DropRetained(e.prefix + "/" + t)
				}
				continue
			}
			if e.d.MQTT != nil {
				e.d.MQTT.SetRetained(e.prefix+"/"+t, m.payload)
			}
			if e.d.Bus != nil {
				e.d.Bus.Publish(t, m.payload)
			}
		}
		if len(batch) > 0 {
			continue
		}
		select {
		case <-e.stateWake:
		case <-done:
			e.mu.Lock()
			left := len(e.states)
			e.mu.Unlock()
			if left == 0 {
				return
			}
		}
	}
}

func (e *Engine) setHealth() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.setHealthLocked()
}

func (e *Engine) setHealthLocked() {
	if e.d.Health == nil {
		return
	}
	switch {
	case e.loadErr != "" && e.set.Load() != nil:
		e.d.Health.Set("scenes", health.Degraded, "scene reload refused, the previous scenes are still in use: "+e.loadErr)
	case e.loadErr != "":
		e.d.Health.Set("scenes", health.Failed, e.loadErr)
	case e.fsys == nil:
		e.d.Health.Set("scenes", health.Degraded, "no scenes directory configured (scenes.dir)")
	default:
		e.d.Health.Set("scenes", health.OK, "")
	}
}
