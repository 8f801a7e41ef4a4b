package cue

import (
	"context"
	"reflect"
	"sync"
	"testing"
	"time"

	"fieldkit/internal/clock"
)

func TestTimeline(t *testing.T) {
	lv := func(n int) *int { return &n }
	cases := []struct {
		name string
		a    Action
		want []Step
	}{
		{"on", Action{Do: On}, []Step{{0, 100}}},
		{"on dimmed", Action{Do: On, Level: lv(40)}, []Step{{0, 40}}},
		{"off", Action{Do: Off}, []Step{{0, 0}}},
		{"level", Action{Do: Level, Level: lv(0)}, []Step{{0, 0}}},
		{"pulse", Action{Do: Pulse, For: 200 * ms}, []Step{{0, 100}, {200 * ms, 0}}},
		{"blink", Action{Do: Blink, Period: 500 * ms, Count: 2},
			[]Step{{0, 100}, {250 * ms, 0}, {500 * ms, 100}, {750 * ms, 0}}},
		{"double", Action{Do: Haptic, Pattern: "double"},
			[]Step{{0, 100}, {120 * ms, 0}, {240 * ms, 100}, {360 * ms, 0}}},
		{"color", Action{Do: Color, Color: "#ffffff"}, nil},
	}
	for _, c := range cases {
		if got := Timeline(c.a); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
	// Every pattern ends off and lasts as long as it says.
	for name, p := range Patterns {
		tl := Timeline(Action{Do: Haptic, Pattern: name})
		last := tl[len(tl)-1]
		if last.Level != 0 || last.At != p.Length()-p.Pulses[len(p.Pulses)-1].Off {
			t.Errorf("%s: timeline ends %+v", name, last)
		}
	}
}

func TestPlayOnClockWithoutDrift(t *testing.T) {
	clk := clock.NewFake(time.Unix(0, 0))
	start := clk.Now()
	var mu sync.Mutex
	var got []time.Duration
	done := make(chan bool)
	go func() {
		done <- Play(context.Background(), clk, start, Timeline(Action{Do: Blink, Period: 100 * ms, Count: 2}), func(s Step) {
			mu.Lock()
			got = append(got, clk.Since(start))
			mu.Unlock()
		})
	}()
	for i := 0; i < 3; i++ {
		if !clk.WaitForTimers(1, 5*time.Second) {
			t.Fatal("player never waited")
		}
		// Overshoot: the next step must still be timed from start.
		clk.Advance(60 * ms)
	}
	if !<-done {
		t.Fatal("Play reported cancel")
	}
	want := []time.Duration{0, 60 * ms, 120 * ms, 180 * ms}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("steps at %v, want %v", got, want)
	}
}

func TestRunnerReplacesAndStops(t *testing.T) {
	var r Runner
	started := make(chan int, 2)
	stopped := make(chan int, 2)
	job := func(n int) func(context.Context) {
		return func(ctx context.Context) {
			started <- n
			<-ctx.Done()
			stopped <- n
		}
	}
	r.Go(job(1))
	<-started
	r.Go(job(2)) // must stop 1 before starting 2
	if n := <-stopped; n != 1 {
		t.Fatalf("stopped %d first", n)
	}
	<-started
	if !r.Busy() {
		t.Fatal("job 2 not busy")
	}
	r.Stop()
	if n := <-stopped; n != 2 {
		t.Fatalf("stopped %d", n)
	}
	if r.Busy() {
		t.Fatal("busy after Stop")
	}
	r.Stop() // idempotent
}
