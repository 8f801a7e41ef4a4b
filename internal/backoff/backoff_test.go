package backoff

import (
	"context"
	"testing"
	"time"

	"fieldkit/internal/clock"
)

func TestFullJitterBounds(t *testing.T) {
	b := Backoff{Base: time.Second, Cap: 5 * time.Minute, Rand: func() float64 { return 0.999999 }}
	want := []time.Duration{1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300}
	for i, w := range want {
		got := b.Next()
		if got > w*time.Second || got < w*time.Second*99/100 {
			t.Fatalf("attempt %d: %v, want just under %v", i, got, w*time.Second)
		}
	}
	b.Reset()
	b.Rand = func() float64 { return 0 }
	if got := b.Next(); got != 0 {
		t.Fatalf("full jitter lower bound = %v", got)
	}
	for i := 0; i < 100; i++ {
		b.Next()
	}
	b.Rand = nil
	if got := b.Next(); got < 0 || got >= 5*time.Minute {
		t.Fatalf("after many attempts: %v", got)
	}
}

func TestSleepOnFakeClock(t *testing.T) {
	clk := clock.NewFake(time.Unix(0, 0))
	done := make(chan error, 1)
	go func() { done <- Sleep(context.Background(), clk, time.Minute) }()
	if !clk.WaitForTimers(1, 5*time.Second) {
		t.Fatal("Sleep never armed a timer")
	}
	clk.Advance(time.Minute)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Sleep(ctx, clk, time.Hour); err == nil {
		t.Fatal("Sleep ignored a cancelled context")
	}
}
