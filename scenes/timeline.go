package scenes

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"time"

	"fieldkit/drivers/cue"
	"fieldkit/internal/backoff"
)

// States of a scene.
const (
	StateIdle      = "idle"
	StateRunning   = "running"
	StateDone      = "done"
	StateCancelled = "cancelled"
	StateFailed    = "failed"
)

// Status is a scene's current state, as retained on
// <prefix>/scene/<name>/state and published on the bus.
type Status struct {
	Scene  string    `json:"scene"`
	State  string    `json:"state"`
	Step   int       `json:"step,omitempty"` // last step dispatched, from 1
	Steps  int       `json:"steps"`
	Run    uint64    `json:"run,omitempty"`
	Reason string    `json:"reason,omitempty"`
	Queued int       `json:"queued,omitempty"`
	Since  time.Time `json:"since"`
}

func (s Status) json() []byte {
	b, _ := json.Marshal(s)
	return b
}

// RunRecord is one run of a scene, step by step.
type RunRecord struct {
	Run     uint64       `json:"run"`
	Trigger string       `json:"trigger"`
	State   string       `json:"state"`
	Reason  string       `json:"reason,omitempty"`
	Started time.Time    `json:"started"`
	Ended   *time.Time   `json:"ended,omitempty"`
	Steps   []StepRecord `json:"steps"`
	// OnCancel records the on_cancel steps, run after a cancel.
	OnCancel []StepRecord `json:"on_cancel,omitempty"`
}

// StepRecord is when a step was due and when it was dispatched.
// Lateness is Actual-Planned; Spread is how far apart the first and last
// action of all steps due at the same time were dispatched. With leads
// (an output sent its command ahead of the step), Actual is the step's
// first send, and both are measured against each send's own time
// (the step's time less the output's lead).
type StepRecord struct {
	Step       int        `json:"step"`
	At         string     `json:"at"`
	Kind       string     `json:"kind"`
	Targets    []string   `json:"targets,omitempty"`
	Planned    *time.Time `json:"planned,omitempty"`
	Actual     *time.Time `json:"actual,omitempty"`
	LatenessUS *float64   `json:"lateness_us,omitempty"`
	SpreadUS   *float64   `json:"spread_us,omitempty"`
	Pending    bool       `json:"pending,omitempty"` // a publish or webhook still in flight
	Error      string     `json:"error,omitempty"`
	// Outputs are the step's targets one by one: sent, and confirmed or
	// failed as each output hears back.
	Outputs []TargetRecord `json:"outputs,omitempty"`

	asyncDone bool
}

func newRecord(r *run) *RunRecord {
	return &RunRecord{Run: r.id, Trigger: r.fire.source, State: StateRunning, Steps: newRecords(r.sc.Steps)}
}

func newRecords(steps []Step) []StepRecord {
	recs := make([]StepRecord, len(steps))
	for i := range steps {
		st := &steps[i]
		recs[i] = StepRecord{Step: i + 1, At: st.At.String(), Kind: st.kind(), Targets: st.targets,
			Outputs: newTargetRecords(st.targets)}
		switch {
		case st.Publish != nil:
			recs[i].Targets = []string{st.Publish.Topic}
		case st.Webhook != nil:
			recs[i].Targets = []string{st.Webhook.URL}
		}
	}
	return recs
}

func us(d time.Duration) *float64 {
	v := float64(d) / float64(time.Microsecond)
	return &v
}

// publishers is how many goroutines send publish steps. A publish waits
// for the broker (QoS 1 and 2) or the socket; a few side by side keep one
// slow acknowledgement from holding up the next cue.
const publishers = 4

// idleWorkers is how many timeline workers wait for the next run. More
// run only while that many scenes wait for later steps at once.
const idleWorkers = 4

// asyncStep is a publish or webhook step in flight.
type asyncStep struct {
	s    *slot
	r    *run
	k    int
	wait func(context.Context) error // a publish already handed to the connection
}

// launch drives r from the calling goroutine through the steps that are
// due now (a cue's usual single step), and hands it to a timeline worker
// at the first step it must wait for. A run it finishes may start the
// next queued one, which it drives the same way.
func (e *Engine) launch(s *slot, r *run) {
	for r != nil {
		wait, next, later := e.drive(s, r, false)
		if wait {
			e.toWorker(s, r)
		}
		// QoS 0 publishes sent above are settled here, after the cue
		// is out: waking a publisher goroutine for them would take a
		// processor from the cue's way to the broker.
		for _, a := range later {
			e.finishAsync(a.r, a.k, sentQoS0(a.wait))
			e.launch(a.s, e.release(a.s, a.r))
		}
		r = next
	}
}

func (e *Engine) toWorker(s *slot, r *run) {
	select {
	case e.work <- workItem{s, r}:
	default:
		e.workers.Add(1)
		go e.worker(s, r)
	}
}

// worker drives runs that wait for later steps. It holds an OS thread at
// real-time priority (when allowed) for its whole life and keeps it
// between runs, so a run costs no thread; a worker beyond idleWorkers
// ends after its run, and its thread with it, so that no other goroutine
// ever runs at that priority.
func (e *Engine) worker(s *slot, r *run) {
	defer e.workers.Done()
	if prio := e.cfg.rtPriority(); prio > 0 {
		if err := realtimeThread(prio); err != nil {
			e.rtRefused.Do(func() {
				e.log.Info("scene timelines run at normal priority; steps may be a millisecond or more late on a busy box",
					"rt_priority", prio, "err", err, "fix", "run as root, or with LimitRTPRIO= in the unit")
			})
		}
	}
	for {
		for r != nil {
			_, r, _ = e.drive(s, r, true)
		}
		if e.idle.Add(1) > idleWorkers {
			e.idle.Add(-1)
			return
		}
		select {
		case w := <-e.work:
			e.idle.Add(-1)
			s, r = w.s, w.r
		case <-e.quit:
			e.idle.Add(-1)
			return
		}
	}
}

// publisher sends publish steps until Run ends.
func (e *Engine) publisher() {
	defer e.pubLoops.Done()
	for a := range e.pubq {
		e.runAsync(a)
	}
}

func (e *Engine) startAsync(a asyncStep) {
	if a.wait != nil || a.r.steps[a.k].Publish != nil {
		select {
		case e.pubq <- a:
			return
		default: // all busy and a backlog: do not make the timeline wait
		}
	}
	go e.runAsync(a)
}

func (e *Engine) runAsync(a asyncStep) {
	st := &a.r.steps[a.k]
	var err error
	switch {
	case a.wait != nil:
		err = a.wait(a.r.stepsCtx)
	case st.Publish != nil:
		err = e.publish(a.r, st.Publish)
	default:
		err = e.webhook(a.r, st.Webhook)
	}
	e.finishAsync(a.r, a.k, err)
	e.launch(a.s, e.release(a.s, a.r))
}

// drive runs r's step groups from r.next on. Steps due at the same time
// form a group whose cue actions are applied back to back (Apply never
// blocks, by contract), and whose publish and webhook steps are sent by
// other goroutines, so nothing in a group waits for the network. Off a
// worker it stops at the first group not yet due and reports wait; on a
// worker it waits for it. When the phase is over it returns the run to
// drive next, if any (r again for its on_cancel steps, or the scene's
// next queued run).
func (e *Engine) drive(s *slot, r *run, onWorker bool) (wait bool, next *run, later []asyncStep) {
	steps := r.steps
	ctx := r.stepsCtx
	for r.next < len(steps) {
		i := r.next
		j := i
		for j < len(steps) && steps[j].At == steps[i].At {
			j++
		}
		planned := r.start.Add(steps[i].At)
		// Outputs with a lead are sent their command that much ahead,
		// the longest lead first; the group waits for its first send.
		leads, lead := e.leadsOf(steps, i, j)
		due := planned.Add(-lead)
		// Sends spread over time are timed by a worker, never by the
		// goroutine that fired the run.
		if e.clk.Now().Before(due) || (lead > 0 && !onWorker) {
			// Not the engine's lock on every step: a worker waiting for
			// it behind an ordinary thread that the kernel has put aside
			// waits at that thread's priority, not its own.
			if !r.announced {
				e.mu.Lock()
				e.announceLocked(s, r)
				e.mu.Unlock()
			}
			if !onWorker {
				return true, nil, later
			}
		}
		// A cancel that came as the step fell due may have lost wait's
		// select to the timer: a cancelled run dispatches no more steps.
		if !e.wait(ctx, due, onWorker) || ctx.Err() != nil {
			break
		}
		later = e.dispatch(s, r, i, j, planned, leads, !onWorker, later)
		r.next = j
	}
	return false, e.release(s, r), later
}

// dispatch runs the group steps[i:j] due at planned and records it.
// Off a worker (on the goroutine that fired the run, at once) a publish
// is handed to the connection right here, so that a relayed cue pays no
// goroutine switch; a worker leaves even that to the publishers, since
// a connection whose socket is stuck may take a while to accept it.
//
// Outputs with a lead (leads, longest first; only on a worker) are sent
// their command at planned less their lead, each waited for in turn, and
// the rest at planned. When the first of those times has already passed
// (a step at the run's start, or a worker woken late) every send is
// delayed alike, so that the group still lands together, late, rather
// than the longest-lead outputs landing late and alone; so is every send
// after one that went out late.
//
// QoS 0 publishes sent inline are appended to later, for the caller to
// wait for (briefly: until the connection has written them).
func (e *Engine) dispatch(s *slot, r *run, i, j int, planned time.Time, leads []early, inline bool, later []asyncStep) []asyncStep {
	steps := r.steps
	g := group{e: e, s: s, r: r, i: i, j: j, planned: planned, recs: r.records()}
	// The group's tables live in this frame for groups of up to 8 steps
	// and 16 outputs (arrays inside g would make g point into itself,
	// which moves it to the heap).
	var act [8]time.Time
	var late [8]time.Duration
	var off [8]int
	var tat [16]time.Time
	var terr [16]error
	var tlead [16]time.Duration
	t := groupTables{acts: act[:0], lates: late[:0], offs: off[:0], tat: tat[:0], terr: terr[:0], tlead: tlead[:0]}
	nt := 0
	for k := i; k < j; k++ {
		t.acts, t.lates, t.offs = append(t.acts, time.Time{}), append(t.lates, 0), append(t.offs, nt)
		nt += len(steps[k].targets)
	}
	for ; nt > 0; nt-- {
		t.tat, t.terr, t.tlead = append(t.tat, time.Time{}), append(t.terr, nil), append(t.tlead, 0)
	}
	if len(leads) > 0 {
		if late := e.clk.Now().Sub(planned.Add(-leads[0].lead)); late > 0 {
			g.shift = late
		}
	}
	ctx := r.stepsCtx
	cancelled := false
	for _, x := range leads {
		if !g.waitSend(ctx, x.lead) {
			cancelled = true
			break
		}
		g.apply(&t, x.k, x.n, x.lead)
	}
	if len(leads) > 0 && !cancelled && !g.waitSend(ctx, 0) {
		cancelled = true
	}
	var async []asyncStep
	snd, canSend := e.d.MQTT.(sender)
	sent := false
	for k := i; k < j && !cancelled; k++ {
		st := &steps[k]
		switch {
		case st.Publish != nil && inline && canSend:
			g.mark(&t, k, e.clk.Now(), 0)
			t, qos, retain, body := r.publishArgs(st.Publish)
			async = append(async, asyncStep{s, r, k, snd.Send(t, qos, retain, body)})
			sent = true
		case st.Publish != nil, st.Webhook != nil:
			g.mark(&t, k, e.clk.Now(), 0)
			async = append(async, asyncStep{s: s, r: r, k: k})
		default:
			for n := range st.targets {
				if _, ok := isEarly(leads, k, n); !ok {
					g.apply(&t, k, n, 0)
				}
			}
		}
	}
	if sent {
		// The connection's writer goroutine was made runnable on this
		// processor; let it write the cue now rather than after this
		// run's bookkeeping, or after the kernel wakes another thread
		// for it (on a busy box, a tenth of a millisecond).
		runtime.Gosched()
	}
	e.mu.Lock()
	e.announceLocked(s, r)
	r.holds += len(async)
	g.recordLocked(&t)
	if r.phase == phaseSteps {
		e.setStatusLocked(s, Status{State: StateRunning, Step: j, Steps: len(steps), Run: r.id})
	}
	e.mu.Unlock()
	for _, a := range async {
		if a.wait != nil && steps[a.k].Publish.QoS == 0 {
			later = append(later, a)
			continue
		}
		e.startAsync(a)
	}
	return later
}

// group is the dispatch of one step group. Its tables (groupTables) are
// kept apart and passed to its methods: anything reachable from g is
// taken to escape with it, and the tables live in dispatch's frame.
type group struct {
	e       *Engine
	s       *slot
	r       *run
	recs    []StepRecord // the phase's; its header does not change while the run is driven
	i, j    int
	planned time.Time
	shift   time.Duration // every send delayed alike (see dispatch)
	ctx     context.Context
	rep     *stepReporter

	minLate, maxLate time.Duration
	any              bool
}

// groupTables are when each step and each output of a group was sent,
// how late against its own send time, and the outputs' errors.
type groupTables struct {
	acts  []time.Time // per step: its first send
	lates []time.Duration
	offs  []int       // per step: its first output's index in tat
	tat   []time.Time // per output: when Apply was called
	terr  []error
	tlead []time.Duration
}

// waitSend waits until the send of an output with lead is due. A wait
// that ends late (the box stalled the worker) delays the group's later
// sends alike, so that they keep landing with the ones already sent.
func (g *group) waitSend(ctx context.Context, lead time.Duration) bool {
	at := g.planned.Add(g.shift - lead)
	if !g.e.wait(ctx, at, true) || ctx.Err() != nil {
		return false
	}
	if late := g.e.clk.Now().Sub(at); late > 0 {
		g.shift += late
	}
	return true
}

// mark records a send of step k at at, for an output with lead.
func (g *group) mark(t *groupTables, k int, at time.Time, lead time.Duration) {
	late := at.Sub(g.planned.Add(-lead))
	if t.acts[k-g.i].IsZero() {
		t.acts[k-g.i], t.lates[k-g.i] = at, late
	}
	if !g.any || late < g.minLate {
		g.minLate = late
	}
	if !g.any || late > g.maxLate {
		g.maxLate = late
	}
	g.any = true
}

// apply sends step k's action to its n-th output.
func (g *group) apply(t *groupTables, k, n int, lead time.Duration) {
	st := &g.r.steps[k]
	name := st.targets[n]
	if g.ctx == nil {
		// Outputs that hear back from their device measure the cue end
		// to end from the step's planned time, and report how their
		// command ended to the run's record.
		g.rep = &stepReporter{e: g.e, s: g.s, r: g.r, recs: g.recs, i: g.i, j: g.j}
		g.ctx = cue.WithStep(g.r.applyCtx, g.planned, g.rep)
	}
	now := g.e.clk.Now()
	g.mark(t, k, now, lead)
	x := t.offs[k-g.i] + n
	t.tat[x], t.tlead[x] = now, lead
	if err := g.e.d.Targets[name].Apply(g.ctx, st.Action); err != nil {
		t.terr[x] = fmt.Errorf("%s: %w", name, err)
	}
}

// recordLocked writes the group into the run's records.
func (g *group) recordLocked(t *groupTables) {
	e, r, recs := g.e, g.r, g.recs
	spread := g.maxLate - g.minLate
	land := g.planned.Add(g.shift)
	for k := g.i; k < g.j; k++ {
		sr := &recs[k]
		if t.acts[k-g.i].IsZero() {
			sr.Error = "cancelled before it was sent"
			continue
		}
		p, a := g.planned, t.acts[k-g.i]
		sr.Planned, sr.Actual = &p, &a
		sr.LatenessUS, sr.SpreadUS = us(t.lates[k-g.i]), us(spread)
		if r.steps[k].Publish != nil || r.steps[k].Webhook != nil {
			sr.Pending = !sr.asyncDone
		}
		var errl []error
		for n := range sr.Outputs {
			tr := &sr.Outputs[n]
			x := t.offs[k-g.i] + n
			if t.tat[x].IsZero() {
				tr.Error = "cancelled before it was sent"
				continue
			}
			l, at := land, t.tat[x]
			tr.Planned = &l
			if t.tlead[x] > 0 {
				tr.LeadUS = us(t.tlead[x])
			}
			if tr.Sent == nil {
				tr.Sent = &at
			}
			if err := t.terr[x]; err != nil {
				tr.Status, tr.Error = cue.Failed, err.Error()
				errl = append(errl, err)
			} else if tr.Status == statusPlanned {
				tr.Status = cue.Sent
			}
			if tr.Confirmed != nil {
				tr.LandedUS = us(tr.Confirmed.Sub(l))
			}
		}
		if err := joinErrs(errl); err != nil {
			if sr.Error == "" {
				sr.Error = err.Error()
			} else {
				sr.Error = err.Error() + "; " + sr.Error
			}
		}
		e.met.lateness.WithLabelValues(r.sc.Name).Observe(t.lates[k-g.i].Seconds())
	}
	e.met.spread.WithLabelValues(r.sc.Name).Observe(spread.Seconds())
}

// sentQoS0 is the outcome of a QoS 0 publish handed to the connection:
// the connection refused it at once (not connected), or it is on its
// way, which is all QoS 0 promises. Waiting until the socket write is
// done would only take a goroutine switch and a processor from the cue.
func sentQoS0(wait func(context.Context) error) error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := wait(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// records are the step records of r's current phase; guarded by e.mu.
func (r *run) records() []StepRecord {
	if r.phase == phaseOnCancel {
		return r.rec.OnCancel
	}
	return r.rec.Steps
}

// release drops one hold on r (its driver's, or a publish's or
// webhook's). The last one ends the phase: after a cancel the run goes
// on with its on_cancel steps, otherwise it ends and the scene's next
// run, if any, is returned to be launched.
func (e *Engine) release(s *slot, r *run) *run {
	e.mu.Lock()
	defer e.mu.Unlock()
	r.holds--
	if r.holds > 0 {
		return nil
	}
	if r.phase == phaseSteps && r.byUser && len(r.sc.cancelSteps) > 0 && !e.stopped {
		r.phase, r.steps, r.stepsCtx = phaseOnCancel, r.sc.cancelSteps, e.ctx
		r.start, r.next, r.holds = e.clk.Now(), 0, 1
		r.rec.OnCancel = newRecords(r.sc.cancelSteps)
		e.setStatusLocked(s, Status{State: StateRunning, Step: s.status.Step, Steps: len(r.sc.Steps), Run: r.id,
			Reason: r.why + "; running its on_cancel steps"})
		return r
	}
	return e.finishLocked(s, r)
}

// spinWindow is how long before a step's time the timeline stops trusting
// the timer and polls the clock instead: a loaded Linux box wakes timers
// a millisecond or more late, which twelve lights and a presenter notice.
const spinWindow = 5 * time.Millisecond

// threadLead is how long before a step's window a worker stops trusting
// a Go timer and sleeps its own thread; threadSlice is the longest such
// a sleep lasts before the worker looks whether its run was cancelled.
//
// The lead is longer than a show's usual step spacing, so that a worker
// between close steps never waits on a Go timer: its wake-up comes from
// an ordinary thread, tens of milliseconds late on a loaded box. It holds
// one of procsPerCore × cores processors meanwhile.
const (
	threadLead  = 100 * time.Millisecond
	threadSlice = 2 * time.Millisecond
)

// wait blocks until planned on the engine clock, or until ctx ends. The
// timer brings it close; the last spinWindow is polled, bounded in real
// time, and a clock that has not got there by then (a fake one in tests)
// is waited on with a timer again, so a step never runs early.
//
// On a worker, with the real clock, the last stretch before the window
// is a sleep of the worker's own thread (threadSleep), in slices of at
// most threadSlice so that a cancel is seen soon.
func (e *Engine) wait(ctx context.Context, planned time.Time, onWorker bool) bool {
	if ctx.Err() != nil {
		return false
	}
	d := planned.Sub(e.clk.Now())
	if d <= 0 {
		return true
	}
	if onWorker && e.realClock {
		if d >= gcGap {
			steerGC()
		}
		// Far from the step a timer will do, and a cancel ends it at
		// once; the last threadLead before the window is slept on the
		// thread, a cancel seen within threadSlice.
		if d > spinWindow+threadLead && !e.sleep(ctx, d-spinWindow-threadLead) {
			return false
		}
		for d = planned.Sub(e.clk.Now()); d > spinWindow; d = planned.Sub(e.clk.Now()) {
			threadSleep(min(d-spinWindow, threadSlice))
			if ctx.Err() != nil {
				return false
			}
		}
	} else if d > spinWindow && !e.sleep(ctx, d-spinWindow) {
		return false
	}
	// The poll does not yield: on a busy box a goroutine that gives up its
	// processor here gets it back only when another goroutine's burst of
	// work ends, often a millisecond or more later. Holding it for at
	// most two windows per step costs little and keeps the step on time.
	// A clock that stands still for 100 µs of real time is a test's fake:
	// it is waited on with its timer instead.
	begin := time.Now()
	bound, from := begin.Add(2*spinWindow), e.clk.Now()
	for n := 0; ; n++ {
		now := e.clk.Now()
		if !now.Before(planned) {
			return true
		}
		if n%64 == 0 {
			real := time.Now()
			if ctx.Err() != nil {
				return false
			}
			if real.After(bound) || (now.Equal(from) && real.Sub(begin) > 100*time.Microsecond) {
				break
			}
		}
	}
	if d := planned.Sub(e.clk.Now()); d > 0 {
		return e.sleep(ctx, d)
	}
	return true
}

func (e *Engine) sleep(ctx context.Context, d time.Duration) bool {
	t := e.clk.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C():
		return true
	case <-ctx.Done():
		return false
	}
}

func (e *Engine) finishAsync(r *run, k int, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	sr := &r.records()[k]
	sr.Pending, sr.asyncDone = false, true
	if err != nil {
		sr.Error = err.Error()
		e.log.Warn("scene step failed", "scene", r.sc.Name, "run", r.id, "step", k+1, "err", err)
	}
}

// finishLocked ends r, publishes its final state and starts the scene's
// next run (a restart waiting, else the first queued fire), returned for
// the caller to launch once it lets go of e.mu.
func (e *Engine) finishLocked(s *slot, r *run) *run {
	defer e.active.Done()
	r.cancel()
	rec := r.rec
	now := e.clk.Now()
	rec.Ended = &now
	st := Status{Steps: len(r.sc.Steps), Run: r.id, Step: s.status.Step}
	switch {
	case r.why != "":
		st.State, st.Reason = StateCancelled, r.why
	default:
		st.State = StateDone
		for _, sr := range rec.Steps {
			if sr.Error != "" {
				st.State, st.Reason = StateFailed, fmt.Sprintf("step %d (%s): %s", sr.Step, sr.Kind, sr.Error)
				break
			}
		}
	}
	if st.State == StateCancelled {
		for _, sr := range rec.OnCancel {
			if sr.Error != "" {
				st.Reason += fmt.Sprintf("; on_cancel step %d (%s): %s", sr.Step, sr.Kind, sr.Error)
				break
			}
		}
	}
	rec.State, rec.Reason = st.State, st.Reason
	e.met.runs.WithLabelValues(r.sc.Name, st.State).Inc()
	// A run that went through is in its state topic and the metrics; a
	// relay scene may run many times a second, each a log line otherwise.
	lvl := slog.LevelInfo
	if st.State == StateDone {
		lvl = slog.LevelDebug
	}
	e.log.Log(context.Background(), lvl, "scene ended", "scene", r.sc.Name, "run", r.id, "state", st.State, "reason", st.Reason)
	s.cur = nil
	e.setStatusLocked(s, st)
	if s.removed {
		delete(e.slots, s.name)
		e.pushStateLocked(stateMsg{name: s.name})
		return nil
	}
	if e.stopped {
		return nil
	}
	sc, ok := e.set.Load().Get(s.name)
	if !ok {
		return nil
	}
	switch {
	case s.pending != nil:
		f := *s.pending
		s.pending = nil
		return e.startLocked(s, sc, f)
	case len(s.queue) > 0:
		f := s.queue[0]
		s.queue = s.queue[1:]
		return e.startLocked(s, sc, f)
	}
	return nil
}

// sender is what *mqttc.Conn has beyond MQTT: hand a publish to the
// connection now, wait for it later.
type sender interface {
	Send(topic string, qos byte, retained bool, payload []byte) (wait func(context.Context) error)
}

func (e *Engine) publish(r *run, p *Publish) error {
	if e.d.MQTT == nil {
		return fmt.Errorf("publish %s: no MQTT connection", p.Topic)
	}
	t, qos, retain, body := r.publishArgs(p)
	return e.d.MQTT.Publish(r.stepsCtx, t, qos, retain, body)
}

func (r *run) publishArgs(p *Publish) (topic string, qos byte, retain bool, body []byte) {
	body = p.body
	if p.Passthrough && len(r.fire.payload) > 0 {
		body = r.fire.payload
	}
	return p.Topic, byte(p.QoS), p.Retain, body
}

func (e *Engine) webhook(r *run, w *Webhook) error {
	b := backoff.Backoff{Base: 250 * time.Millisecond, Cap: 5 * time.Second}
	var err error
	for attempt := 0; attempt <= w.retries(); attempt++ {
		if attempt > 0 {
			if backoff.Sleep(r.stepsCtx, e.clk, b.Next()) != nil {
				return fmt.Errorf("webhook %s: cancelled after %d tries: %w", w.URL, attempt, err)
			}
		}
		if err = e.post(r.stepsCtx, w); err == nil {
			return nil
		}
		if r.stepsCtx.Err() != nil {
			return fmt.Errorf("webhook %s: cancelled: %w", w.URL, err)
		}
	}
	return fmt.Errorf("webhook %s: %d tries failed, last: %w", w.URL, w.retries()+1, err)
}

func (e *Engine) post(ctx context.Context, w *Webhook) error {
	ctx, cancel := context.WithTimeout(ctx, w.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(w.body))
	if err != nil {
		return err
	}
	ct := "text/plain; charset=utf-8"
	if json.Valid(w.body) {
		ct = "application/json"
	}
	req.Header.Set("Content-Type", ct)
	resp, err := e.d.HTTP.Do(req)
	if err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			return fmt.Errorf("no answer within %v", w.Timeout)
		}
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("HTTP %s", resp.Status)
	}
	return nil
}

func joinErrs(errs []error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	msg := errs[0].Error()
	for _, e := range errs[1:] {
		msg += "; " + e.Error()
	}
	return fmt.Errorf("%s", msg)
}
