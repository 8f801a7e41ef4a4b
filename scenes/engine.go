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
	"fieldkit/internal/topic"
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
	ErrRateLimited  = errors.New("too many fires from one source")
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
	realClock bool      // the clock is the system's: workers may sleep their threads

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
	filters  map[string]func() // MQTT trigger filters handled, with their cancel (nil: cannot be removed)
	subs     map[string]*bus.Subscription

	stateWake chan struct{}
	// stateTimer wakes the state loop stateLinger after the first change
	// of a batch: a timer costs the timeline nothing, where waking the
	// loop's goroutine at once would take a processor from the cue.
	stateTimer *time.Timer
	stateArmed bool
	schedWake  chan struct{}
	loops      sync.WaitGroup // bus subscription readers

	// Runs are admitted, not spawned: a fire that waits (queued, or a
	// restart while the old run winds down) is a fireReq in its slot and
	// holds nothing else. A run whose steps are due now is driven by the
	// goroutine that started it; one with steps to wait for goes to a
	// timeline worker, a goroutine on a real-time OS thread of its own
	// that is kept for the next run (see worker). There is at most one
	// run per scene, so at most one worker per scene.
	active   sync.WaitGroup // runs not yet finished
	work     chan workItem  // idle workers receive here
	quit     chan struct{}  // closed when Run ends: idle workers exit
	workers  sync.WaitGroup
	idle     atomic.Int32
	pubq     chan asyncStep // publish steps, for the publisher goroutines
	pubLoops sync.WaitGroup
}

type workItem struct {
	s *slot
	r *run
}

// slot is the runtime state of one scene name; it outlives reloads so
// that a running scene keeps its state and queue.
type slot struct {
	name    string
	cur     *run
	pending *fireReq // a restart waiting for cur to wind down; the latest wins
	queue   []fireReq
	status  Status
	last    *RunRecord
	removed bool // gone from the set; dropped when its run ends
	limits  map[string]*bucket
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
	byUser bool   // cancelled by Cancel: the scene's on_cancel steps run
	fired  time.Time
	rec    *RunRecord // guarded by Engine.mu
	// applyCtx is what outputs get: the engine's, since what a step
	// starts (a blink, an effect) belongs to the output and outlasts
	// the run.
	applyCtx context.Context

	// The phase being run: the scene's steps, then, after a cancel, its
	// on_cancel steps. Changed only when holds is 0 (under Engine.mu);
	// otherwise next is advanced by the one goroutine driving the run.
	phase    int
	steps    []Step
	stepsCtx context.Context
	start    time.Time
	next     int
	holds    int // the driver and the publish/webhook steps in flight; guarded by Engine.mu

	announced bool // its running state is published; set under Engine.mu by the goroutine driving the run, which alone reads it unlocked
}

const (
	phaseSteps = iota
	phaseOnCancel
)

type stateMsg struct {
	name string
	st   *Status // nil: drop the retained state
}

// New loads the scenes and prepares the engine; nothing listens until Run.
// A bad scene set is an error here (file:line for each problem): the agent
// must not start a show with a typo accepted.
func New(cfg Config, d Deps) (*Engine, error) {
	if d.Targets == nil {
		return nil, ErrNoTargets
	}
	real := d.Clock == nil || d.Clock == clock.Real()
	d.Clock, d.Log = deps.Clock(d.Clock), deps.Log(d.Log)
	if d.HTTP == nil {
		d.HTTP = &http.Client{}
	}
	e := &Engine{
		cfg: cfg, d: d, log: d.Log.With("part", "scenes"), clk: d.Clock, realClock: real,
		slots: map[string]*slot{}, filters: map[string]func(){}, subs: map[string]*bus.Subscription{},
		stateWake: make(chan struct{}, 1), schedWake: make(chan struct{}, 1),
		work: make(chan workItem), quit: make(chan struct{}), pubq: make(chan asyncStep, 256),
	}
	if d.MQTT != nil {
		e.prefix = d.MQTT.Prefix()
	}
	e.stateTimer = time.AfterFunc(time.Hour, func() {
		select {
		case e.stateWake <- struct{}{}:
		default:
		}
	})
	e.stateTimer.Stop()
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
			if err := e.d.MQTT.Handle(topic.Under(e.prefix, topic.SceneCmd("+", h.verb)), h.f); err != nil {
				e.ctx = nil
				e.mu.Unlock()
				return fmt.Errorf("scenes: mqtt %s topic: %w", h.verb, err)
			}
		}
	}
	e.syncTriggersLocked()
	e.mu.Unlock()

	for range publishers {
		e.pubLoops.Add(1)
		go e.publisher()
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); e.scheduleLoop(ctx) }()
	stateDone := make(chan struct{})
	go func() { defer wg.Done(); e.stateLoop(stateDone) }()

	<-ctx.Done()
	e.mu.Lock()
	e.stopped = true
	for _, s := range e.slots {
		s.queue, s.pending = nil, nil
		if s.cur != nil {
			if s.cur.why == "" {
				s.cur.why = "the agent is stopping"
			}
			s.cur.cancel()
		}
	}
	for f, sub := range e.subs {
		sub.Close()
		delete(e.subs, f)
	}
	e.mu.Unlock()
	e.active.Wait()
	close(e.quit)
	close(e.pubq)
	e.workers.Wait()
	e.pubLoops.Wait()
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

// Refusal is a fire the engine turned away: its queue was full or its
// source sent too many. RetryAfter is when trying again may succeed.
type Refusal struct {
	Scene      string
	Reason     error // ErrQueueFull or ErrRateLimited
	RetryAfter time.Duration
	Detail     string
}

func (r *Refusal) Error() string {
	return fmt.Sprintf("scene %q: %v (%s); try again in %v", r.Scene, r.Reason, r.Detail, r.RetryAfter.Round(time.Millisecond))
}

func (r *Refusal) Unwrap() error { return r.Reason }

// Fire runs scene name now, or as its policy says when it is running.
// source says who fired it (for the record and its rate limit); payload
// is the triggering message's, sent on by passthrough publish steps.
// Steps due at once run before Fire returns, on the caller's goroutine;
// later ones on a timeline worker.
func (e *Engine) Fire(name, source string, payload []byte) (Outcome, error) {
	e.mu.Lock()
	out, r, s, err := e.fireLocked(name, source, payload)
	e.mu.Unlock()
	if err != nil {
		label := name
		if errors.Is(err, ErrUnknownScene) || errors.Is(err, ErrNotRunning) {
			label = "" // a sender chooses the name: keep the series bounded
		}
		e.met.fires.WithLabelValues(label, refusalLabel(err)).Inc()
		return "", err
	}
	if r != nil {
		e.launch(s, r)
	}
	e.met.fires.WithLabelValues(name, string(out)).Inc()
	return out, nil
}

func refusalLabel(err error) string {
	switch {
	case errors.Is(err, ErrQueueFull):
		return "refused_queue_full"
	case errors.Is(err, ErrRateLimited):
		return "refused_rate_limit"
	case errors.Is(err, ErrBusy):
		return "ignored_busy"
	case errors.Is(err, ErrUnknownScene):
		return "unknown_scene"
	}
	return "refused"
}

func (e *Engine) fireLocked(name, source string, payload []byte) (Outcome, *run, *slot, error) {
	if e.ctx == nil || e.stopped {
		return "", nil, nil, ErrNotRunning
	}
	sc, ok := e.set.Load().Get(name)
	if !ok {
		return "", nil, nil, fmt.Errorf("scene %q: %w (have: %v)", name, ErrUnknownScene, e.set.Load().Names())
	}
	s := e.slots[name]
	if wait := e.admitLocked(s, source); wait > 0 {
		return "", nil, nil, &Refusal{Scene: name, Reason: ErrRateLimited, RetryAfter: wait,
			Detail: fmt.Sprintf("%s sent more than %d a second", source, e.cfg.rateLimit())}
	}
	f := fireReq{source: source, payload: payload}
	if s.cur == nil {
		return Started, e.startLocked(s, sc, f), s, nil
	}
	switch sc.Policy {
	case Restart:
		// The new run starts when the old one has wound down (its
		// publishes and webhooks cancelled); a later restart meanwhile
		// replaces this one, so a burst of restarts costs one run.
		if s.cur.ctx.Err() == nil {
			s.cur.why = "restarted by " + source
			s.cur.cancel()
		}
		s.pending = &f
		return Restarted, nil, nil, nil
	case Queue:
		if len(s.queue) >= e.cfg.queueLimit() {
			return "", nil, nil, &Refusal{Scene: name, Reason: ErrQueueFull, RetryAfter: e.retryAfterLocked(s, sc),
				Detail: fmt.Sprintf("%d waiting behind the running one", len(s.queue))}
		}
		s.queue = append(s.queue, f)
		e.setStatusLocked(s, s.status) // publishes the queue length
		return Queued, nil, nil, nil
	default:
		return "", nil, nil, fmt.Errorf("scene %q: %w", name, ErrBusy)
	}
}

// retryAfterLocked estimates when a place frees up in s's queue: when
// the running run ends, at the scene's length from its start.
func (e *Engine) retryAfterLocked(s *slot, sc *Scene) time.Duration {
	d := time.Second
	if s.cur != nil {
		left := s.cur.fired.Add(sc.length()).Sub(e.clk.Now())
		d = max(d, left)
	}
	return d
}

// Cancel stops scene name if it is running and drops its queued fires.
// It reports whether anything was stopped. The run's on_cancel steps
// (by default: every output its steps use switched off) run right after.
func (e *Engine) Cancel(name, source string) (bool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s, ok := e.slots[name]
	if !ok {
		return false, fmt.Errorf("scene %q: %w (have: %v)", name, ErrUnknownScene, e.set.Load().Names())
	}
	had := len(s.queue) > 0 || s.pending != nil
	s.queue, s.pending = nil, nil
	if s.cur != nil {
		if s.cur.ctx.Err() == nil {
			s.cur.why = "cancelled by " + source
			s.cur.byUser = true
			s.cur.cancel()
		}
		return true, nil
	}
	return had, nil
}

// startLocked makes the run of sc for f current in s; the caller
// launches it once it has let go of e.mu.
func (e *Engine) startLocked(s *slot, sc *Scene, f fireReq) *run {
	e.runID++
	ctx, cancel := context.WithCancel(e.ctx)
	r := &run{id: e.runID, sc: sc, fire: f, ctx: ctx, cancel: cancel, fired: e.clk.Now(), applyCtx: e.ctx}
	r.steps, r.stepsCtx, r.start, r.holds = sc.Steps, ctx, r.fired, 1
	r.rec = newRecord(r)
	r.rec.Started = r.start
	s.cur, s.last = r, r.rec
	e.active.Add(1)
	// The running state is announced by whoever drives the run, after
	// the steps due at once went out (announceLocked).
	e.log.Debug("scene started", "scene", sc.Name, "run", r.id, "trigger", f.source)
	return r
}

// announceLocked publishes that r is running, once, before its first
// step group's state.
func (e *Engine) announceLocked(s *slot, r *run) {
	if !r.announced {
		r.announced = true
		e.setStatusLocked(s, Status{State: StateRunning, Steps: len(r.sc.Steps), Run: r.id})
	}
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
	e.pushStateLocked(stateMsg{name: s.name, st: &st})
}

func (e *Engine) pushStateLocked(m stateMsg) {
	e.states = append(e.states, m)
	if !e.stateArmed {
		e.stateArmed = true
		// Real time, not the engine clock: this batches work, it is
		// not part of any scene's timing.
		e.stateTimer.Reset(stateLinger)
	}
}

// stateLinger is how long the state loop lets changes gather before it
// publishes them: a cue's run (running, step 1, done) takes microseconds,
// and its states then go out as one message, after the cue rather than
// racing it to the broker.
const stateLinger = 2 * time.Millisecond

// stateLoop publishes state changes off the timeline goroutines, so that
// a slow broker never delays a cue. The bus gets every change, in order
// (scenes may trigger on another's state); MQTT gets each scene's latest
// state of a batch, retained, which is all a retained topic keeps anyway.
func (e *Engine) stateLoop(done <-chan struct{}) {
	for {
		e.mu.Lock()
		batch := e.states
		e.states, e.stateArmed = nil, false
		e.mu.Unlock()
		last := map[string]int{}
		for i, m := range batch {
			last[m.name] = i
		}
		for i, m := range batch {
			t := topic.SceneState(m.name)
			var payload []byte
			if m.st != nil {
				payload = m.st.json()
			}
			if e.d.MQTT != nil && last[m.name] == i {
				if payload == nil {
					e.d.MQTT.DropRetained(e.prefix + "/" + t)
				} else {
					e.d.MQTT.SetRetained(e.prefix+"/"+t, payload)
				}
			}
			if payload != nil && e.d.Bus != nil {
				e.d.Bus.Publish(t, payload)
			}
		}
		select {
		case <-e.stateWake:
		case <-done:
			e.mu.Lock()
			left := len(e.states)
			e.mu.Unlock()
			if left == 0 {
				e.stateTimer.Stop()
				return
			}
		}
	}
}

// bucket is a token bucket: one source's fires of one scene.
type bucket struct {
	tokens float64
	at     time.Time
}

// maxSources bounds the buckets kept per scene: wildcard triggers name
// their sources by topic, which a sender chooses.
const maxSources = 64

// admitLocked takes a token from source's bucket in s, or says how long
// until one is there.
func (e *Engine) admitLocked(s *slot, source string) time.Duration {
	rate := float64(e.cfg.rateLimit())
	if rate <= 0 {
		return 0
	}
	now := e.clk.Now()
	if s.limits == nil {
		s.limits = map[string]*bucket{}
	}
	b, ok := s.limits[source]
	if !ok {
		if len(s.limits) >= maxSources {
			for k, o := range s.limits {
				if o.tokens+now.Sub(o.at).Seconds()*rate >= rate {
					delete(s.limits, k) // full again: forgetting it changes nothing
				}
			}
		}
		if len(s.limits) >= maxSources {
			source = "(other sources)"
			b = s.limits[source]
		}
		if b == nil {
			b = &bucket{tokens: rate, at: now}
			s.limits[source] = b
		}
	}
	b.tokens = min(rate, b.tokens+now.Sub(b.at).Seconds()*rate)
	b.at = now
	if b.tokens >= 1 {
		b.tokens--
		return 0
	}
	return time.Duration((1 - b.tokens) / rate * float64(time.Second))
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
