package mqttdev

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"fieldkit/drivers/cue"
	"fieldkit/internal/bus"
	"fieldkit/internal/clock"
	"fieldkit/internal/testutil"
)

// lamp is a fallback target that records what it was asked to do.
type lamp struct {
	mu        sync.Mutex
	got       []cue.Action
	blinkOnly bool
}

func (l *lamp) Name() string { return "cue_lamp" }
func (l *lamp) Kind() string { return "gpio" }
func (l *lamp) Check(a cue.Action) error {
	if l.blinkOnly && a.Do != cue.Blink {
		return fmt.Errorf("no %s", a.Do)
	}
	return a.Validate()
}
func (l *lamp) Apply(_ context.Context, a cue.Action) error {
	l.mu.Lock()
	l.got = append(l.got, a)
	l.mu.Unlock()
	return nil
}
func (l *lamp) State() any   { return nil }
func (l *lamp) Close() error { return nil }
func (l *lamp) actions() []cue.Action {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]cue.Action(nil), l.got...)
}

type wrig struct {
	fc     *fakeConn
	clk    *clock.Fake
	w      *Wearable
	lamp   *lamp
	alerts *bus.Subscription
}

func newWearable(t *testing.T, l *lamp) *wrig {
	t.Helper()
	r := &wrig{fc: newFakeConn(), clk: clock.NewFake(time.Date(2026, 5, 1, 18, 0, 0, 0, time.UTC)), lamp: l}
	b := bus.New(nil)
	r.alerts = b.Subscribe("cue/+/alert", 8)
	n := 0
	var err error
	var fb cue.Target
	if l != nil {
		fb = l
	}
	r.w, err = NewWearable(r.fc, &WearableOpts{Name: "presenter", ID: "anna", Fallback: fb, Bus: b, Clock: r.clk,
		NewID: func() string { n++; return fmt.Sprintf("c%d", n) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.w.Close() })
	return r
}

const cmdGoLive = `fieldkit/box1/cue/anna/cmd q1 r=false {"id":"c1","pattern":"go-live","deadline":"2026-05-01T18:00:04.000Z"}`

func (r *wrig) waitStatus(t *testing.T, status string) WearableState {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		st := r.w.State().(WearableState)
		if st.Status == status {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("status %q, waiting for %q", st.Status, status)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestWearableAckedFirstTime(t *testing.T) {
	r := newWearable(t, &lamp{})
	if err := r.w.Apply(context.Background(), cue.Action{Do: cue.Haptic, Pattern: "go-live"}); err != nil {
		t.Fatal(err)
	}
	if got := r.fc.waitPubs(t, 1); got[0] != cmdGoLive {
		t.Fatalf("sent %q\nwant %q", got[0], cmdGoLive)
	}
	r.clk.WaitForTimers(1, 5*time.Second)
	r.clk.Advance(1500 * time.Millisecond)
	if err := r.fc.deliver("fieldkit/box1/cue/anna/ack", `{"id":"c1"}`); err != nil {
		t.Fatal(err)
	}
	st := r.waitStatus(t, "acked")
	if st.Sends != 1 || st.AckMs != 1500 || st.Acks != 1 {
		t.Fatalf("state %+v", st)
	}
	r.clk.Advance(time.Minute)
	if p := r.fc.take(); len(p) != 0 || len(r.lamp.actions()) != 0 {
		t.Fatalf("after the ack: sent %q, lamp %v", p, r.lamp.actions())
	}
}

func TestWearableAckedAfterRepeat(t *testing.T) {
	r := newWearable(t, &lamp{})
	if err := r.w.Apply(context.Background(), cue.Action{Do: cue.Haptic, Pattern: "go-live"}); err != nil {
		t.Fatal(err)
	}
	r.fc.waitPubs(t, 1)
	r.clk.WaitForTimers(1, 5*time.Second)
	r.clk.Advance(1999 * time.Millisecond)
	if p := r.fc.take(); len(p) != 0 {
		t.Fatalf("repeated early: %q", p)
	}
	r.clk.Advance(time.Millisecond)
	// The repeat is the same command: same id, same deadline.
	if got := r.fc.waitPubs(t, 1); got[0] != cmdGoLive {
		t.Fatalf("repeat %q", got[0])
	}
	// An ack for some other cue is not this one's.
	if err := r.fc.deliver("fieldkit/box1/cue/anna/ack", `{"id":"c0"}`); err != nil {
		t.Fatal(err)
	}
	r.clk.WaitForTimers(1, 5*time.Second)
	r.clk.Advance(time.Second)
	if err := r.fc.deliver("fieldkit/box1/cue/anna/ack", `{"id":"c1"}`); err != nil {
		t.Fatal(err)
	}
	if st := r.waitStatus(t, "acked"); st.Sends != 2 || st.AckMs != 3000 {
		t.Fatalf("state %+v", st)
	}
	r.clk.Advance(time.Minute)
	if len(r.lamp.actions()) != 0 {
		t.Fatal("fallback fired although acked")
	}
}

func TestWearableSilentFallsBack(t *testing.T) {
	for _, c := range []struct {
		name string
		lamp *lamp
		want []cue.Action
	}{
		{"lamp plays the pattern", &lamp{}, []cue.Action{{Do: cue.Haptic, Pattern: "go-live"}}},
		{"lamp that only blinks", &lamp{blinkOnly: true}, []cue.Action{{Do: cue.Blink, Period: 500 * time.Millisecond, Count: 3}}},
		{"no fallback: alert only", nil, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newWearable(t, c.lamp)
			if err := r.w.Apply(context.Background(), cue.Action{Do: cue.Haptic, Pattern: "go-live"}); err != nil {
				t.Fatal(err)
			}
			r.fc.waitPubs(t, 1)
			r.clk.WaitForTimers(1, 5*time.Second)
			r.clk.Advance(2 * time.Second)
			r.fc.waitPubs(t, 1)
			r.clk.WaitForTimers(1, 5*time.Second)
			r.clk.Advance(2 * time.Second)
			var ev bus.Event
			select {
			case ev = <-r.alerts.C():
			case <-time.After(5 * time.Second):
				t.Fatal("no alert on the bus")
			}
			var al Alert
			if err := json.Unmarshal(ev.Payload, &al); err != nil {
				t.Fatal(err)
			}
			if ev.Topic != "cue/anna/alert" || al.Cue != "c1" || al.Pattern != "go-live" || al.Output != "presenter" ||
				!strings.Contains(al.Reason, "no ack") {
				t.Fatalf("alert %s %+v", ev.Topic, al)
			}
			if c.lamp != nil {
				if al.Fallback != "cue_lamp" {
					t.Fatalf("alert names fallback %q", al.Fallback)
				}
				if got := c.lamp.actions(); fmt.Sprint(got) != fmt.Sprint(c.want) {
					t.Fatalf("lamp got %+v, want %+v", got, c.want)
				}
			}
			if st := r.w.State().(WearableState); st.Status != "fallback" || st.Sends != 2 || st.Missed != 1 {
				t.Fatalf("state %+v", st)
			}
			if p := r.fc.take(); len(p) != 0 {
				t.Fatalf("sent a third time: %q", p)
			}
		})
	}
}

func TestWearableNextCueReplacesWaiting(t *testing.T) {
	r := newWearable(t, &lamp{})
	r.w.Apply(context.Background(), cue.Action{Do: cue.Haptic, Pattern: "short"})
	r.fc.waitPubs(t, 1)
	r.clk.WaitForTimers(1, 5*time.Second)
	if err := r.w.Apply(context.Background(), cue.Action{Do: cue.Haptic, Pattern: "long"}); err != nil {
		t.Fatal(err)
	}
	if got := r.fc.waitPubs(t, 1); !strings.Contains(got[0], `"id":"c2","pattern":"long"`) {
		t.Fatalf("%q", got)
	}
	// A late ack for the replaced cue changes nothing.
	r.fc.deliver("fieldkit/box1/cue/anna/ack", `{"id":"c1"}`)
	r.clk.WaitForTimers(1, 5*time.Second)
	r.clk.Advance(2 * time.Second)
	if got := r.fc.waitPubs(t, 1); !strings.Contains(got[0], `"id":"c2"`) {
		t.Fatalf("repeat %q", got)
	}
}

func TestWearableRefusals(t *testing.T) {
	r := newWearable(t, nil)
	if err := r.w.Apply(context.Background(), cue.Action{Do: cue.On}); err == nil {
		t.Fatal("on accepted by a wearable")
	}
	for _, bad := range []string{"", "{", `{"id":""}`, `[1]`, strings.Repeat("x", 100)} {
		if err := r.fc.deliver("fieldkit/box1/cue/anna/ack", bad); err == nil {
			t.Errorf("ack %q accepted", bad)
		}
	}
	for _, id := range []string{"a/b", "x+", ""} {
		if _, err := NewWearable(newFakeConn(), &WearableOpts{ID: id}); err == nil {
			t.Errorf("id %q accepted", id)
		}
	}
}

func FuzzParseAck(f *testing.F) {
	for _, s := range []string{`{"id":"c1"}`, `{"id":1}`, `{}`, `null`, `{"id":"\u0000"}`, "\xff"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := ParseAck(b)
		if err == nil && a.ID == "" {
			t.Fatal("accepted an ack without id")
		}
	})
}

// outcomeLog is a cue.Reporter for tests.
type outcomeLog struct {
	mu  sync.Mutex
	got []string
}

func (o *outcomeLog) Report(output string, x cue.Outcome) {
	o.mu.Lock()
	o.got = append(o.got, output+" "+x.Status+" "+x.Error)
	o.mu.Unlock()
}

func (o *outcomeLog) all() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.got...)
}

// A scene step's wearable cue is reported sent, then confirmed by the
// ack, or failed when the fallback took over.
func TestWearableReportsToTheStep(t *testing.T) {
	for _, acked := range []bool{true, false} {
		r := newWearable(t, &lamp{})
		var log outcomeLog
		ctx := cue.WithStep(context.Background(), r.clk.Now(), &log)
		if err := r.w.Apply(ctx, cue.Action{Do: cue.Haptic, Pattern: "go-live"}); err != nil {
			t.Fatal(err)
		}
		r.fc.waitPubs(t, 1)
		r.clk.WaitForTimers(1, 5*time.Second)
		want := []string{"presenter sent ", "presenter confirmed "}
		if acked {
			if err := r.fc.deliver("fieldkit/box1/cue/anna/ack", `{"id":"c1"}`); err != nil {
				t.Fatal(err)
			}
			r.waitStatus(t, "acked")
		} else {
			r.clk.Advance(2 * time.Second)
			r.fc.waitPubs(t, 1)
			r.clk.WaitForTimers(1, 5*time.Second)
			r.clk.Advance(2 * time.Second)
			r.waitStatus(t, "fallback")
			want[1] = "presenter failed no ack after 2 sends in 4s"
		}
		testutil.WaitFor(t, 5*time.Second, "two outcomes", func() bool { return len(log.all()) == 2 })
		if got := log.all(); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("acked=%v: reported %q, want %q", acked, got, want)
		}
	}
}
