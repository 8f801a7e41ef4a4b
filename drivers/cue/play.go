package cue

import (
	"context"
	"sync"
	"time"

	"fieldkit/internal/clock"
)

// Step is one point on an action's timeline: At after the action starts,
// the output goes to Level percent (0 is off).
type Step struct {
	At    time.Duration
	Level int
}

// Timeline turns an on/off-style action (on, off, pulse, blink, level,
// haptic) into the levels an output takes over time, so that a relay, a
// motor, a WLED and a Tasmota plug all blink the same way. It returns nil
// for verbs that are not on/off (color, effect). The action must be valid.
func Timeline(a Action) []Step {
	lvl := a.Percent(100)
	switch a.Do {
	case On:
		return []Step{{0, lvl}}
	case Off:
		return []Step{{0, 0}}
	case Level:
		return []Step{{0, lvl}}
	case Pulse:
		return []Step{{0, lvl}, {a.For, 0}}
	case Blink:
		steps := make([]Step, 0, 2*a.Count)
		for i := 0; i < a.Count; i++ {
			at := time.Duration(i) * a.Period
			steps = append(steps, Step{at, lvl}, Step{at + a.Period/2, 0})
		}
		return steps
	case Haptic:
		p, ok := Patterns[a.Pattern]
		if !ok {
			return nil
		}
		var steps []Step
		var at time.Duration
		for _, s := range p.Pulses {
			steps = append(steps, Step{at, s.Strength}, Step{at + s.On, 0})
			at += s.On + s.Off
		}
		return steps
	}
	return nil
}

// Play calls set for each step at start+step.At on clk. Steps are timed
// from start, not from the previous step, so a long timeline does not
// drift. It reports false when ctx ended first.
func Play(ctx context.Context, clk clock.Clock, start time.Time, steps []Step, set func(Step)) bool {
	for _, s := range steps {
		if !SleepUntil(ctx, clk, start.Add(s.At)) {
			return false
		}
		set(s)
	}
	return true
}

// SleepUntil waits on clk until t, or until ctx ends (false).
func SleepUntil(ctx context.Context, clk clock.Clock, t time.Time) bool {
	d := t.Sub(clk.Now())
	if d <= 0 {
		return ctx.Err() == nil
	}
	tm := clk.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C():
		return true
	case <-ctx.Done():
		return false
	}
}

// Runner owns at most one background job of a target (a blink, an
// effect, a wait for an ack). Starting a job stops the previous one and
// waits for it, so two jobs never drive the same output at once.
type Runner struct {
	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// Go stops the current job and runs f on a new goroutine; f must return
// soon after its context ends.
func (r *Runner) Go(f func(ctx context.Context)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopLocked()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	r.cancel, r.done = cancel, done
	go func() {
		defer close(done)
		f(ctx)
	}()
}

// Stop stops the current job, if any, and waits for it to return.
func (r *Runner) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopLocked()
}

// Busy reports whether a job is still running.
func (r *Runner) Busy() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done == nil {
		return false
	}
	select {
	case <-r.done:
		return false
	default:
		return true
	}
}

func (r *Runner) stopLocked() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	<-r.done
	r.cancel, r.done = nil, nil
}
