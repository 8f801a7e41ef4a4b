// Package lifecycle runs the agent's parts: one errgroup owns them all; a
// part that fails is marked failed (with the reason) on the status API and
// restarted with backoff, so that a broken printer never stops the cues;
// only a critical part's failure stops the agent.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"fieldkit/internal/backoff"
	"fieldkit/internal/clock"
	"fieldkit/internal/deps"
	"fieldkit/internal/health"
)

// Part is one long-running piece of the agent.
type Part struct {
	Name string
	Run  func(ctx context.Context) error
	// Critical parts cannot run degraded: their failure stops the agent
	// with a non-zero exit.
	Critical bool
}

// Group owns the parts.
type Group struct {
	Health *health.Registry
	Log    *slog.Logger
	Clock  clock.Clock
	// StopTimeout bounds how long parts may take to stop (default 4 s).
	StopTimeout time.Duration
	// RestartCap caps the backoff between restarts (default 1 min).
	RestartCap time.Duration

	parts []Part
}

// Add registers a part; call before Run.
func (g *Group) Add(p Part) { g.parts = append(g.parts, p) }

// ErrStopTimeout is returned when parts outlive the stop timeout.
var ErrStopTimeout = errors.New("parts did not stop in time")

// Run runs every part until ctx ends or a critical part fails. It returns
// nil on a clean stop.
func (g *Group) Run(ctx context.Context) error {
	g.Clock, g.Log = deps.Clock(g.Clock), deps.Log(g.Log)
	if g.StopTimeout == 0 {
		g.StopTimeout = 4 * time.Second
	}
	if g.RestartCap == 0 {
		g.RestartCap = time.Minute
	}
	eg, ctx := errgroup.WithContext(ctx)
	var mu sync.Mutex
	running := map[string]bool{}
	for _, p := range g.parts {
		p := p
		g.Health.Set(p.Name, health.Starting, "")
		mu.Lock()
		running[p.Name] = true
		mu.Unlock()
		eg.Go(func() error {
			defer func() {
				mu.Lock()
				delete(running, p.Name)
				mu.Unlock()
			}()
			return g.supervise(ctx, p)
		})
	}
	done := make(chan error, 1)
	go func() { done <- eg.Wait() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	t := time.NewTimer(g.StopTimeout)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		mu.Lock()
		var names []string
		for n := range running {
			names = append(names, n)
		}
		mu.Unlock()
		sort.Strings(names)
		return fmt.Errorf("%w: %s", ErrStopTimeout, strings.Join(names, ", "))
	}
}

func (g *Group) supervise(ctx context.Context, p Part) error {
	b := backoff.Backoff{Base: time.Second, Cap: g.RestartCap}
	for {
		started := g.Clock.Now()
		if cur, ok := g.Health.Get(p.Name); !ok || cur.State == health.Starting || cur.State == health.Failed {
			g.Health.Set(p.Name, health.OK, "")
		}
		err := safeRun(ctx, p)
		if ctx.Err() != nil {
			g.Health.Set(p.Name, health.Stopped, "")
			return nil
		}
		if err == nil {
			g.Health.Set(p.Name, health.Stopped, "finished")
			return nil
		}
		g.Health.Set(p.Name, health.Failed, err.Error())
		if p.Critical {
			g.Log.Error("critical part failed; stopping the agent", "part", p.Name, "err", err)
			return fmt.Errorf("%s: %w", p.Name, err)
		}
		// A part that ran a good while before failing starts over with
		// short waits; one that fails at once backs off.
		if g.Clock.Since(started) > 5*g.RestartCap {
			b.Reset()
		}
		wait := b.Next() + time.Second
		g.Log.Error("part failed; restarting", "part", p.Name, "err", err, "in", wait.Round(time.Millisecond))
		if backoff.Sleep(ctx, g.Clock, wait) != nil {
			g.Health.Set(p.Name, health.Stopped, "")
			return nil
		}
	}
}

func safeRun(ctx context.Context, p Part) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("panic: %v", v)
		}
	}()
	return p.Run(ctx)
}
