package scenes

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
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
}

// StepRecord is when a step was due and when it was dispatched.
// Lateness is Actual-Planned; Spread is how far apart the first and last
// action of all steps due at the same time were dispatched.
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

	asyncDone bool
}

func newRecord(r *run) *RunRecord {
	rec := &RunRecord{Run: r.id, Trigger: r.fire.source, State: StateRunning, Steps: make([]StepRecord, len(r.sc.Steps))}
	for i := range r.sc.Steps {
		st := &r.sc.Steps[i]
		rec.Steps[i] = StepRecord{Step: i + 1, At: st.At.String(), Kind: st.kind(), Targets: st.targets}
		switch {
		case st.Publish != nil:
			rec.Steps[i].Targets = []string{st.Publish.Topic}
		case st.Webhook != nil:
			rec.Steps[i].Targets = []string{st.Webhook.URL}
		}
	}
	return rec
}

func us(d time.Duration) *float64 {
	v := float64(d) / float64(time.Microsecond)
	return &v
}

// execute runs r's timeline. Steps due at the same time form a group whose
// cue actions are applied back to back (Apply never blocks, by contract),
// and whose publish and webhook steps go out on their own goroutines, so
// nothing in a group waits for the network.
func (e *Engine) execute(s *slot, r *run, prev *run) {
	defer e.runs.Done()
	defer close(r.done)
	if prio := e.cfg.rtPriority(); prio > 0 {
		if err := realtimeThread(prio); err != nil {
			e.rtRefused.Do(func() {
				e.log.Info("scene timelines run at normal priority; steps may be a millisecond or more late on a busy box",
					"rt_priority", prio, "err", err, "fix", "run as root, or with LimitRTPRIO= in the unit")
			})
		}
	}
	// The timeline counts from the fire, so that a slow goroutine start
	// shows as lateness; after a restart, from the end of the old run.
	start := r.fired
	if prev != nil {
		<-prev.done
		start = e.clk.Now()
	}
	e.mu.Lock()
	r.rec.Started = start
	s.last = r.rec
	e.setStatusLocked(s, Status{State: StateRunning, Steps: len(r.sc.Steps), Run: r.id})
	e.mu.Unlock()
	e.log.Info("scene started", "scene", r.sc.Name, "run", r.id, "trigger", r.fire.source)

	applyCtx := e.ctx // lasting effects belong to the targets, not to this run
	steps := r.sc.Steps
	var async sync.WaitGroup
	type result struct {
		actual time.Time
		err    error
	}
	results := make([]result, len(steps))
	for i := 0; i < len(steps); {
		j := i
		for j < len(steps) && steps[j].At == steps[i].At {
			j++
		}
		planned := start.Add(steps[i].At)
		if !e.wait(r.ctx, planned) {
			break
		}
		first, last := time.Time{}, time.Time{}
		// Outputs that hear back from their device measure the cue end
		// to end, from the step's planned time.
		stepCtx := cue.WithPlanned(applyCtx, planned)
		for k := i; k < j; k++ {
			st := &steps[k]
			switch {
			case st.Publish != nil:
				results[k].actual = e.clk.Now()
				async.Add(1)
				go func(k int) { defer async.Done(); e.finishAsync(r, k, e.publish(r, st.Publish)) }(k)
			case st.Webhook != nil:
				results[k].actual = e.clk.Now()
				async.Add(1)
				go func(k int) { defer async.Done(); e.finishAsync(r, k, e.webhook(r, st.Webhook)) }(k)
			default:
				var errs []error
				for n, name := range st.targets {
					now := e.clk.Now()
					if n == 0 {
						results[k].actual = now
					}
					if first.IsZero() {
						first = now
					}
					last = now
					if err := e.d.Targets[name].Apply(stepCtx, st.Action); err != nil {
						errs = append(errs, fmt.Errorf("%s: %w", name, err))
					}
				}
				results[k].err = joinErrs(errs)
			}
			if first.IsZero() {
				first = results[k].actual
			}
			if results[k].actual.After(last) {
				last = results[k].actual
			}
		}
		spread := last.Sub(first)
		e.mu.Lock()
		for k := i; k < j; k++ {
			sr := &r.rec.Steps[k]
			p, a := planned, results[k].actual
			sr.Planned, sr.Actual = &p, &a
			sr.LatenessUS, sr.SpreadUS = us(a.Sub(p)), us(spread)
			if steps[k].Publish != nil || steps[k].Webhook != nil {
				sr.Pending = !sr.asyncDone
			}
			if results[k].err != nil {
				sr.Error = results[k].err.Error()
			}
			e.met.lateness.WithLabelValues(r.sc.Name).Observe(a.Sub(p).Seconds())
		}
		e.met.spread.WithLabelValues(r.sc.Name).Observe(spread.Seconds())
		e.setStatusLocked(s, Status{State: StateRunning, Step: j, Steps: len(steps), Run: r.id})
		e.mu.Unlock()
		i = j
	}
	async.Wait()
	e.finish(s, r)
}

// spinWindow is how long before a step's time the timeline stops trusting
// the timer and polls the clock instead: a loaded Linux box wakes timers
// a millisecond or more late, which twelve lights and a presenter notice.
const spinWindow = 5 * time.Millisecond

// wait blocks until planned on the engine clock, or until ctx ends. The
// timer brings it close; the last spinWindow is polled, bounded in real
// time, and a clock that has not got there by then (a fake one in tests)
// is waited on with a timer again, so a step never runs early.
func (e *Engine) wait(ctx context.Context, planned time.Time) bool {
	if ctx.Err() != nil {
		return false
	}
	d := planned.Sub(e.clk.Now())
	if d <= 0 {
		return true
	}
	if d > spinWindow && !e.sleep(ctx, d-spinWindow) {
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
	sr := &r.rec.Steps[k]
	sr.Pending, sr.asyncDone = false, true
	if err != nil {
		sr.Error = err.Error()
		e.log.Warn("scene step failed", "scene", r.sc.Name, "run", r.id, "step", k+1, "err", err)
	}
}

func (e *Engine) finish(s *slot, r *run) {
	e.mu.Lock()
	defer e.mu.Unlock()
	r.cancel()
	rec := r.rec
	now := e.clk.Now()
	rec.Ended = &now
	st := Status{Steps: len(r.sc.Steps), Run: r.id, Step: s.status.Step}
	if s.cur != r {
		st.Step = 0
	}
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
	rec.State, rec.Reason = st.State, st.Reason
	e.met.runs.WithLabelValues(r.sc.Name, st.State).Inc()
	e.log.Info("scene ended", "scene", r.sc.Name, "run", r.id, "state", st.State, "reason", st.Reason)
	if s.cur != r {
		// Restarted: the next run has already taken the slot. Record the
		// end on the bus and MQTT all the same.
		e.setStatusLocked(s, st)
		return
	}
	s.cur = nil
	e.setStatusLocked(s, st)
	if s.removed {
		delete(e.slots, s.name)
		e.pushStateLocked(stateMsg{name: s.name})
		return
	}
	if len(s.queue) > 0 && !e.stopped {
		next := s.queue[0]
		s.queue = s.queue[1:]
		if sc, ok := e.set.Load().Get(s.name); ok {
			e.startLocked(s, sc, next, nil)
		}
	}
}

func (e *Engine) publish(r *run, p *Publish) error {
	if e.d.MQTT == nil {
		return fmt.Errorf("publish %s: no MQTT connection", p.Topic)
	}
	body := p.body
	if p.Passthrough && len(r.fire.payload) > 0 {
		body = r.fire.payload
	}
	return e.d.MQTT.Publish(r.ctx, p.Topic, byte(p.QoS), p.Retain, body)
}

func (e *Engine) webhook(r *run, w *Webhook) error {
	b := backoff.Backoff{Base: 250 * time.Millisecond, Cap: 5 * time.Second}
	var err error
	for attempt := 0; attempt <= w.retries(); attempt++ {
		if attempt > 0 {
			if backoff.Sleep(r.ctx, e.clk, b.Next()) != nil {
				return fmt.Errorf("webhook %s: cancelled after %d tries: %w", w.URL, attempt, err)
			}
		}
		if err = e.post(r.ctx, w); err == nil {
			return nil
		}
		if r.ctx.Err() != nil {
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
