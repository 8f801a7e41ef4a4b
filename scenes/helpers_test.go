package scenes

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"fieldkit/drivers/cue"
	"fieldkit/internal/bus"
	"fieldkit/internal/clock"
	"fieldkit/internal/mqttc"
	"fieldkit/internal/testutil"
	"fieldkit/internal/topic"
)

// applied is one Apply a recording target saw.
type applied struct {
	target string
	action cue.Action
	at     time.Time
}

// recorder collects the applies of all its targets in order.
type recorder struct {
	mu  sync.Mutex
	clk clock.Clock
	log []applied
}

func (r *recorder) all() []applied {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]applied(nil), r.log...)
}

func (r *recorder) names() []string {
	var out []string
	for _, a := range r.all() {
		out = append(out, a.target)
	}
	return out
}

// recTarget is a cue output that only records. Kind "lamp" refuses colour
// and haptics, as a GPIO lamp would.
type recTarget struct {
	name, kind string
	r          *recorder
	fail       error
}

func (t *recTarget) Name() string { return t.name }
func (t *recTarget) Kind() string { return t.kind }
func (t *recTarget) Check(a cue.Action) error {
	if t.kind == "lamp" && (a.Do == cue.Color || a.Do == cue.Haptic || a.Do == cue.Effect) {
		return fmt.Errorf("a lamp cannot do %s", a.Do)
	}
	return nil
}
func (t *recTarget) Apply(_ context.Context, a cue.Action) error {
	t.r.mu.Lock()
	t.r.log = append(t.r.log, applied{t.name, a, t.r.clk.Now()})
	t.r.mu.Unlock()
	return t.fail
}
func (t *recTarget) State() any   { return nil }
func (t *recTarget) Close() error { return nil }

func newTargets(r *recorder, names ...string) map[string]cue.Target {
	m := map[string]cue.Target{}
	for _, n := range names {
		m[n] = &recTarget{name: n, kind: "strip", r: r}
	}
	m["lamp"] = &recTarget{name: "lamp", kind: "lamp", r: r}
	return m
}

// fakeMQTT is the engine's MQTT dependency in memory: deliver() plays the
// broker, and a handler's error is what mqttc would answer on /error.
type fakeMQTT struct {
	mu        sync.Mutex
	handlers  map[string][]mqttc.Handler
	published []mqttc.Message
	retained  map[string][]string // every value set, in order
	dropped   []string
}

func newFakeMQTT() *fakeMQTT {
	return &fakeMQTT{handlers: map[string][]mqttc.Handler{}, retained: map[string][]string{}}
}

func (f *fakeMQTT) Prefix() string { return "fieldkit/test" }
func (f *fakeMQTT) Handle(filter string, h mqttc.Handler) error {
	if err := topic.ValidFilter(filter); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.handlers[filter] = append(f.handlers[filter], h)
	return nil
}
func (f *fakeMQTT) Publish(_ context.Context, t string, qos byte, retained bool, payload []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.published = append(f.published, mqttc.Message{Topic: t, Payload: append([]byte(nil), payload...), Retained: retained})
	return nil
}
func (f *fakeMQTT) SetRetained(t string, payload []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.retained[t] = append(f.retained[t], string(payload))
}
func (f *fakeMQTT) DropRetained(t string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dropped = append(f.dropped, t)
}

// deliver hands a message to every matching handler and joins their errors.
func (f *fakeMQTT) deliver(t string, payload []byte, retained bool) error {
	f.mu.Lock()
	var hs []mqttc.Handler
	for filter, list := range f.handlers {
		if topic.Match(filter, t) {
			hs = append(hs, list...)
		}
	}
	f.mu.Unlock()
	var errs []error
	for _, h := range hs {
		errs = append(errs, h(context.Background(), mqttc.Message{Topic: t, Payload: payload, Retained: retained}))
	}
	return errors.Join(errs...)
}

func (f *fakeMQTT) pubs() []mqttc.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]mqttc.Message(nil), f.published...)
}

func (f *fakeMQTT) states(t string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.retained[t]...)
}

// rig is an engine on a fake clock with recording targets, running until
// the test ends.
type rig struct {
	e    *Engine
	clk  *clock.Fake
	rec  *recorder
	mq   *fakeMQTT
	bus  *bus.Bus
	dir  string
	tgts map[string]cue.Target
}

var t0 = time.Date(2024, 6, 1, 19, 0, 0, 0, time.UTC)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func newRig(t *testing.T, files map[string]string, mod ...func(*Deps)) *rig {
	t.Helper()
	clk := clock.NewFake(t0)
	r := &rig{clk: clk, rec: &recorder{clk: clk}, mq: newFakeMQTT(), bus: bus.New(quietLog()), dir: t.TempDir()}
	r.tgts = newTargets(r.rec, "a", "b", "c", "d", "e")
	writeFiles(t, r.dir, files)
	d := Deps{Targets: r.tgts, MQTT: r.mq, Bus: r.bus, Clock: clk, Log: quietLog()}
	for _, m := range mod {
		m(&d)
	}
	e, err := New(Config{Dir: r.dir}, d)
	if err != nil {
		t.Fatal(err)
	}
	r.e = e
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	waitFor(t, "engine running", func() bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		return e.ctx != nil
	})
	return r
}

// waitFor polls cond until it holds or a deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, 5*time.Second, what, cond)
}

func (r *rig) state(name string) Status {
	d, _ := r.e.Get(name)
	return d.Status
}

// advance moves the fake clock by d once the engine waits on n timers.
func (r *rig) advance(t *testing.T, n int, d time.Duration) {
	t.Helper()
	if !r.clk.WaitForTimers(n, 5*time.Second) {
		t.Fatalf("engine is not waiting on %d timer(s)", n)
	}
	r.clk.Advance(d)
}

func (r *rig) waitApplied(t *testing.T, n int) []applied {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d applies", n), func() bool { return len(r.rec.all()) >= n })
	return r.rec.all()
}

// runUntil advances the fake clock 10 s at a time, whenever the engine
// waits on it, until n applies were recorded.
func (r *rig) runUntil(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(r.rec.all()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d applies, want %d", len(r.rec.all()), n)
		}
		if r.clk.WaitForTimers(1, 10*time.Millisecond) {
			r.clk.Advance(10 * time.Second)
		}
	}
}
