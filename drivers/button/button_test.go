package button

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"

	"fieldkit/internal/bus"
	"fieldkit/internal/clock"
)

const ms = time.Millisecond

type rig struct {
	t   *testing.T
	pin *gpiotest.Pin
	clk *clock.Fake
	b   *Button
	ev  *bus.Subscription
}

func start(t *testing.T, o Opts) *rig {
	t.Helper()
	r := &rig{t: t, pin: &gpiotest.Pin{N: "GPIO27", Num: 27, EdgesChan: make(chan gpio.Level)}, clk: clock.NewFake(time.Unix(0, 0))}
	bs := bus.New(nil)
	r.ev = bs.Subscribe("button/#", 16)
	o.Bus, o.Clock, o.Poll = bs, r.clk, 2*ms
	var err error
	if r.b, err = New(r.pin, &o); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.b.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return r
}

// edge injects a level change and waits until Run has taken it in.
func (r *rig) edge(l gpio.Level) {
	r.t.Helper()
	n := r.b.Edges()
	r.pin.EdgesChan <- l
	r.waitFor("edge", func() bool { return r.b.Edges() > n })
}

// idle waits for Run to go round its loop twice more (so it has looked
// at the clock since the last change).
func (r *rig) idle() {
	r.t.Helper()
	n := r.b.loops.Load()
	r.waitFor("poll", func() bool { return r.b.loops.Load() >= n+2 })
}

func (r *rig) waitFor(what string, cond func() bool) {
	r.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			r.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

func (r *rig) noEvent() {
	r.t.Helper()
	r.idle()
	select {
	case ev := <-r.ev.C():
		r.t.Fatalf("unexpected event %s %s", ev.Topic, ev.Payload)
	default:
	}
}

func (r *rig) event(topic string) []byte {
	r.t.Helper()
	select {
	case ev := <-r.ev.C():
		if ev.Topic != topic {
			r.t.Fatalf("event %s, want %s", ev.Topic, topic)
		}
		return ev.Payload
	case <-time.After(5 * time.Second):
		r.t.Fatalf("no %s event", topic)
	}
	return nil
}

func TestBouncyPressAndRelease(t *testing.T) {
	r := start(t, Opts{Name: "go", Pull: gpio.PullUp})
	if r.pin.P != gpio.PullUp || r.b.Pressed() {
		t.Fatalf("pull %v, pressed %v", r.pin.P, r.b.Pressed())
	}
	// Contact bounce: low, high, low within 4 ms.
	r.edge(gpio.Low)
	r.clk.Advance(2 * ms)
	r.edge(gpio.High)
	r.clk.Advance(2 * ms)
	r.edge(gpio.Low)
	r.clk.Advance(29 * ms) // 29 ms since the last edge: not yet
	r.noEvent()
	r.clk.Advance(1 * ms)
	var p Press
	if err := json.Unmarshal(r.event("button/go/press"), &p); err != nil || p.Button != "go" || !p.At.Equal(time.Unix(0, 0).Add(34*ms)) {
		t.Fatalf("press %+v %v", p, err)
	}
	if !r.b.Pressed() || r.b.Presses() != 1 || r.b.Edges() != 3 {
		t.Fatalf("pressed %v, presses %d, edges %d", r.b.Pressed(), r.b.Presses(), r.b.Edges())
	}
	// Held for a while, then released cleanly.
	r.clk.Advance(966 * ms)
	r.edge(gpio.High)
	r.clk.Advance(30 * ms)
	var rel Release
	if err := json.Unmarshal(r.event("button/go/release"), &rel); err != nil || rel.HeldMs != 996 {
		t.Fatalf("release %+v %v", rel, err)
	}
	r.noEvent()
}

func TestGlitchIsIgnored(t *testing.T) {
	r := start(t, Opts{Name: "reprint", Pull: gpio.PullUp, Debounce: 20 * ms})
	r.edge(gpio.Low)
	r.clk.Advance(1 * ms)
	r.edge(gpio.High) // a 1 ms spike from a motor starting nearby
	r.clk.Advance(time.Second)
	r.noEvent()
	if r.b.Presses() != 0 {
		t.Fatal("a glitch counted as a press")
	}
}

func TestPullDownIsActiveHigh(t *testing.T) {
	r := start(t, Opts{Name: "pedal", Pull: gpio.PullDown})
	if r.pin.P != gpio.PullDown {
		t.Fatalf("pull %v", r.pin.P)
	}
	r.edge(gpio.High)
	r.clk.Advance(30 * ms)
	r.event("button/pedal/press")
}

func TestBadOpts(t *testing.T) {
	if _, err := New(nil, &Opts{Name: "x"}); !errors.Is(err, ErrNoPin) {
		t.Fatal(err)
	}
	p := &gpiotest.Pin{N: "GPIO5"}
	if _, err := New(p, &Opts{Name: "Go Button", Pull: gpio.PullUp}); !errors.Is(err, ErrBadOpts) {
		t.Fatal(err)
	}
	// gpiotest refuses edge detection without an edge channel: the error
	// names the button and the pin.
	if _, err := New(p, &Opts{Name: "go", Pull: gpio.PullUp}); err == nil {
		t.Fatal("pin without edges accepted")
	}
}
