package lifecycle

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"fieldkit/internal/health"
	"fieldkit/internal/testutil"
)

func TestNonCriticalFailureIsRestartedAndReported(t *testing.T) {
	h := health.NewRegistry()
	g := &Group{Health: h, RestartCap: 10 * time.Millisecond}
	var runs atomic.Int32
	g.Add(Part{Name: "printer", Run: func(ctx context.Context) error {
		if runs.Add(1) == 1 {
			return errors.New("serial port gone")
		}
		<-ctx.Done()
		return nil
	}})
	g.Add(Part{Name: "panicky", Run: func(ctx context.Context) error { panic("bug") }})
	g.Add(Part{Name: "cues", Run: func(ctx context.Context) error { <-ctx.Done(); return nil }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	testutil.WaitFor(t, 5*time.Second, "panicky failed", func() bool {
		p, _ := h.Get("panicky")
		return p.State == health.Failed && p.Reason == "panic: bug"
	})
	testutil.WaitFor(t, 5*time.Second, "printer restarted", func() bool {
		p, _ := h.Get("printer")
		return runs.Load() >= 2 && p.State == health.OK
	})
	if p, _ := h.Get("cues"); p.State != health.OK {
		t.Fatalf("cues = %+v", p)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("clean stop returned %v", err)
	}
	if p, _ := h.Get("cues"); p.State != health.Stopped {
		t.Fatalf("cues after stop = %+v", p)
	}
}

func TestCriticalFailureStops(t *testing.T) {
	h := health.NewRegistry()
	g := &Group{Health: h}
	g.Add(Part{Name: "http", Critical: true, Run: func(ctx context.Context) error { return errors.New("address in use") }})
	g.Add(Part{Name: "cues", Run: func(ctx context.Context) error { <-ctx.Done(); return nil }})
	err := g.Run(context.Background())
	if err == nil || err.Error() != "http: address in use" {
		t.Fatalf("Run = %v", err)
	}
}

func TestStopTimeoutNamesTheStuckPart(t *testing.T) {
	g := &Group{Health: health.NewRegistry(), StopTimeout: 50 * time.Millisecond}
	release := make(chan struct{})
	defer close(release)
	g.Add(Part{Name: "stuck", Run: func(ctx context.Context) error { <-release; return nil }})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := g.Run(ctx)
	if !errors.Is(err, ErrStopTimeout) || err.Error() != "parts did not stop in time: stuck" {
		t.Fatalf("Run = %v", err)
	}
}
