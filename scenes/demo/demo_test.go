package demo

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"fieldkit/drivers/cue"
	"fieldkit/internal/clock"
	"fieldkit/internal/mqttc"
	"fieldkit/scenes"
)

type call struct {
	target string
	a      cue.Action
	at     time.Duration
}

type log struct {
	mu    sync.Mutex
	clk   *clock.Fake
	start time.Time
	calls []call
}

// target records applies; "presenter" accepts only haptics, like the
// wearable driver.
type target struct {
	name string
	l    *log
}

func (t target) Name() string { return t.name }
func (t target) Kind() string { return "recording" }
func (t target) Check(a cue.Action) error {
	if t.name == "presenter" && a.Do != cue.Haptic {
		return io.ErrUnexpectedEOF
	}
	return a.Validate()
}
func (t target) Apply(_ context.Context, a cue.Action) error {
	t.l.mu.Lock()
	defer t.l.mu.Unlock()
	t.l.calls = append(t.l.calls, call{t.name, a, t.l.clk.Since(t.l.start)})
	return nil
}
func (t target) State() any   { return nil }
func (t target) Close() error { return nil }

// mqtt records publishes.
type mqtt struct {
	mu   sync.Mutex
	pubs []string
}

func (m *mqtt) Prefix() string                     { return "fieldkit/demo" }
func (m *mqtt) Handle(string, mqttc.Handler) error { return nil }
func (m *mqtt) SetRetained(string, []byte)         {}
func (m *mqtt) DropRetained(string)                {}
func (m *mqtt) Publish(_ context.Context, t string, _ byte, _ bool, p []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pubs = append(m.pubs, t+" "+string(p))
	return nil
}

func TestDropCountdown(t *testing.T) {
	start := time.Date(2024, 6, 1, 19, 0, 0, 0, time.UTC)
	l := &log{clk: clock.NewFake(start), start: start}
	var mq mqtt
	targets := map[string]cue.Target{}
	for _, n := range Outputs {
		targets[n] = target{n, l}
	}
	e, err := scenes.New(scenes.Config{}, scenes.Deps{Targets: targets, Files: FS(), FilesName: "demo", Clock: l.clk, MQTT: &mq,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if names := e.List().Scenes; len(names) != 3 || names[0].Name != "drop-countdown" || names[1].Name != "swap-battery" || names[2].Name != "wrap-up" {
		t.Fatalf("scenes %+v", names)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = e.Run(ctx) }()
	defer func() { cancel(); <-done }()
	for {
		if _, err := e.Fire("drop-countdown", "test", nil); err == nil {
			break
		}
		time.Sleep(time.Millisecond)
	}
	for _, d := range []time.Duration{30 * time.Second, 20 * time.Second, 10 * time.Second} {
		if !l.clk.WaitForTimers(1, 5*time.Second) {
			t.Fatal("countdown not waiting")
		}
		l.clk.Advance(d)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if d, _ := e.Get("drop-countdown"); d.Status.State == scenes.StateDone {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("countdown did not finish")
		}
		time.Sleep(time.Millisecond)
	}
	var haptics []string
	for _, c := range l.calls {
		if c.a.Do == cue.Haptic {
			haptics = append(haptics, c.target+"@"+c.at.String()+":"+c.a.Pattern)
		}
	}
	want := []string{"motor@30s:short", "presenter@30s:short", "motor@50s:short", "presenter@50s:short", "motor@1m0s:go-live", "presenter@1m0s:go-live"}
	if !slices.Equal(haptics, want) {
		t.Fatalf("haptics %v, want %v", haptics, want)
	}
	if c := l.calls[0]; c.target != "strip" || c.a.Effect != "countdown" || c.a.For != time.Minute {
		t.Fatalf("first action %+v", c)
	}
	if len(mq.pubs) != 1 || mq.pubs[0] != `shop/drop/live {"live":true}` {
		t.Fatalf("published %v", mq.pubs)
	}
	var lampOn bool
	for _, c := range l.calls {
		lampOn = lampOn || (c.target == "cue_lamp" && c.a.Do == cue.On && c.at == time.Minute)
	}
	if !lampOn {
		t.Fatal("cue lamp not on at go-live")
	}
	if _, err := scenes.Load(FS(), "demo", map[string]cue.Target{}, "fieldkit/demo"); err == nil || !strings.Contains(err.Error(), `unknown output "strip"`) {
		t.Fatalf("demo without its outputs: %v", err)
	}
}
