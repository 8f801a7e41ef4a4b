package scenes

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const countdown = `name: drop
policy: %s
steps:
  - {at: 0s, targets: [a, b], do: "on"}
  - {at: 1.5s, target: c, do: haptic, pattern: short}
  - {at: 20s, target: d, do: "off"}
`

func scene(policy string) string { return strings.Replace(countdown, "%s", policy, 1) }

func TestTimelineOrderAndTiming(t *testing.T) {
	r := newRig(t, map[string]string{"drop.yaml": scene("ignore")})
	sub := r.bus.Subscribe("scene/drop/state", 64)
	defer sub.Close()
	if out, err := r.e.Fire("drop", "test", nil); err != nil || out != Started {
		t.Fatalf("Fire: %v %v", out, err)
	}
	got := r.waitApplied(t, 2)
	if len(got) != 2 || got[0].target != "a" || got[1].target != "b" || !got[0].at.Equal(t0) {
		t.Fatalf("step 1: %+v", got)
	}
	r.advance(t, 1, time.Second)
	r.advance(t, 1, 499*time.Millisecond)
	if n := len(r.rec.all()); n != 2 {
		t.Fatalf("step 2 ran %d applies early", n-2)
	}
	r.clk.Advance(time.Millisecond)
	got = r.waitApplied(t, 3)
	if got[2].target != "c" || got[2].action.Pattern != "short" || !got[2].at.Equal(t0.Add(1500*time.Millisecond)) {
		t.Fatalf("step 2: %+v", got[2])
	}
	waitFor(t, "running step 2", func() bool { return r.state("drop").Step == 2 })
	r.advance(t, 1, 18500*time.Millisecond)
	got = r.waitApplied(t, 4)
	if got[3].target != "d" || !got[3].at.Equal(t0.Add(20*time.Second)) {
		t.Fatalf("step 3: %+v", got[3])
	}
	waitFor(t, "done", func() bool { return r.state("drop").State == StateDone })

	d, _ := r.e.Get("drop")
	if d.LastRun == nil || len(d.LastRun.Steps) != 3 {
		t.Fatalf("last run %+v", d.LastRun)
	}
	for i, want := range []time.Duration{0, 1500 * time.Millisecond, 20 * time.Second} {
		s := d.LastRun.Steps[i]
		if !s.Planned.Equal(t0.Add(want)) || !s.Actual.Equal(*s.Planned) || *s.LatenessUS != 0 || s.Error != "" {
			t.Errorf("step %d record %+v", i+1, s)
		}
	}
	// The bus gets every state, in order: idle → running 0..3 → done.
	want := []string{"idle:0", "running:0", "running:1", "running:2", "running:3", "done:3"}
	var onBus []string
	deadline := time.After(5 * time.Second)
	for len(onBus) == 0 || onBus[len(onBus)-1] != "done:3" {
		select {
		case ev := <-sub.C():
			onBus = append(onBus, stateStep(t, string(ev.Payload)))
		case <-deadline:
			t.Fatalf("states on the bus: %v, want %v", onBus, want)
		}
	}
	if onBus[0] != "idle:0" { // idle may have gone out before the subscription
		onBus = append([]string{"idle:0"}, onBus...)
	}
	if !reflect.DeepEqual(onBus, want) {
		t.Fatalf("states on the bus: %v, want %v", onBus, want)
	}
	// The retained MQTT state ends done; states that changed within one
	// publishing round went out as their last one, never out of order.
	var seq []string
	waitFor(t, "retained state done:3", func() bool {
		seq = nil
		for _, p := range r.mq.states("fieldkit/test/scene/drop/state") {
			seq = append(seq, stateStep(t, p))
		}
		return len(seq) > 0 && seq[len(seq)-1] == "done:3"
	})
	if !subsequence(seq, want) {
		t.Fatalf("retained state sequence %v, want an ordered part of %v", seq, want)
	}
}

func stateStep(t *testing.T, payload string) string {
	t.Helper()
	var st Status
	if err := json.Unmarshal([]byte(payload), &st); err != nil {
		t.Fatal(err)
	}
	return st.State + ":" + string(rune('0'+st.Step))
}

// subsequence reports whether sub appears in all in order, without repeats.
func subsequence(sub, all []string) bool {
	i := 0
	for _, s := range sub {
		for i < len(all) && all[i] != s {
			i++
		}
		if i == len(all) {
			return false
		}
		i++
	}
	return true
}

func TestCancel(t *testing.T) {
	r := newRig(t, map[string]string{"drop.yaml": scene("ignore")})
	sub := r.bus.Subscribe("scene/drop/state", 16)
	if _, err := r.e.Fire("drop", "test", nil); err != nil {
		t.Fatal(err)
	}
	r.waitApplied(t, 2)
	r.advance(t, 1, 1500*time.Millisecond)
	r.waitApplied(t, 3)
	if err := r.mq.deliver("fieldkit/test/scene/drop/cancel", []byte("{}"), false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "cancelled", func() bool { return r.state("drop").State == StateCancelled })
	r.clk.Advance(time.Minute)
	// No on_cancel in the file: every output the scene uses is switched
	// off, once, and nothing of the timeline runs after the cancel.
	got := r.rec.all()
	if len(got) != 7 {
		t.Fatalf("%d applies after cancel, want 3 and 4 offs: %+v", len(got), got)
	}
	for i, name := range []string{"a", "b", "c", "d"} {
		if a := got[3+i]; a.target != name || a.action.Do != "off" {
			t.Fatalf("apply %d after cancel: %+v, want %s off", i+1, a, name)
		}
	}
	if st := r.state("drop"); !strings.Contains(st.Reason, "cancelled by mqtt") {
		t.Fatalf("reason %q", st.Reason)
	}
	// The state is mirrored on the bus.
	deadline := time.After(5 * time.Second)
	for {
		select {
		case ev := <-sub.C():
			if strings.Contains(string(ev.Payload), `"state":"cancelled"`) {
				return
			}
		case <-deadline:
			t.Fatal("no cancelled state on the bus")
		}
	}
}

func TestPolicies(t *testing.T) {
	cases := []struct {
		policy  string
		second  Outcome
		err     error
		applies []string // after advancing 40 s
	}{
		// restart: the first run is cut after step 1, the second runs whole.
		{"restart", Restarted, nil, []string{"a", "b", "a", "b", "c", "d"}},
		// ignore: the second fire is refused.
		{"ignore", "", ErrBusy, []string{"a", "b", "c", "d"}},
		// queue: the second run follows the first.
		{"queue", Queued, nil, []string{"a", "b", "c", "d", "a", "b", "c", "d"}},
	}
	for _, c := range cases {
		t.Run(c.policy, func(t *testing.T) {
			r := newRig(t, map[string]string{"drop.yaml": scene(c.policy)})
			if _, err := r.e.Fire("drop", "first", nil); err != nil {
				t.Fatal(err)
			}
			r.waitApplied(t, 2)
			out, err := r.e.Fire("drop", "second", nil)
			if out != c.second || !errors.Is(err, c.err) {
				t.Fatalf("second fire: %q %v", out, err)
			}
			r.runUntil(t, len(c.applies))
			waitFor(t, "done", func() bool { return r.state("drop").State == StateDone })
			if got := r.rec.names(); !reflect.DeepEqual(got, c.applies) {
				t.Fatalf("applies %v, want %v", got, c.applies)
			}
			d, _ := r.e.Get("drop")
			if want := map[string]string{"restart": "second", "ignore": "first", "queue": "second"}[c.policy]; d.LastRun.Trigger != want {
				t.Fatalf("last run fired by %q, want %q", d.LastRun.Trigger, want)
			}
		})
	}
}

func TestReload(t *testing.T) {
	r := newRig(t, map[string]string{"drop.yaml": scene("ignore"), "wrap.yaml": "name: wrap\nsteps:\n  - {at: 0s, target: e, do: \"on\"}\n"})
	if _, err := r.e.Fire("drop", "test", nil); err != nil {
		t.Fatal(err)
	}
	r.waitApplied(t, 2)

	// A bad set is refused whole; the old one stays and the error shows.
	writeFiles(t, r.dir, map[string]string{"drop.yaml": "name: drop\nsteps:\n  - {at: 0s, target: nope, do: \"on\"}\n"})
	err := r.e.Reload()
	if err == nil || !strings.Contains(err.Error(), "drop.yaml:3: steps[0].target: unknown output \"nope\"") {
		t.Fatalf("bad reload: %v", err)
	}
	if l := r.e.List(); len(l.Scenes) != 2 || !strings.Contains(l.LoadError, "nope") {
		t.Fatalf("after a bad reload: %+v", l)
	}
	sc, _ := r.e.set.Load().Get("drop")
	if sc.Steps[0].targets[0] != "a" {
		t.Fatal("old set replaced")
	}

	// A good set replaces it; the running run ends on its old steps, the
	// removed scene's state is dropped, the next fire uses the new steps.
	writeFiles(t, r.dir, map[string]string{"drop.yaml": "name: drop\nsteps:\n  - {at: 0s, target: e, do: \"off\"}\n"})
	if err := os.Remove(filepath.Join(r.dir, "wrap.yaml")); err != nil {
		t.Fatal(err)
	}
	if err := r.e.Reload(); err != nil {
		t.Fatal(err)
	}
	if l := r.e.List(); len(l.Scenes) != 1 || l.LoadError != "" {
		t.Fatalf("after a good reload: %+v", l)
	}
	waitFor(t, "wrap state dropped", func() bool {
		r.mq.mu.Lock()
		defer r.mq.mu.Unlock()
		return len(r.mq.dropped) == 1 && r.mq.dropped[0] == "fieldkit/test/scene/wrap/state"
	})
	r.runUntil(t, 4)
	waitFor(t, "done", func() bool { return r.state("drop").State == StateDone })
	if _, err := r.e.Fire("drop", "test", nil); err != nil {
		t.Fatal(err)
	}
	got := r.waitApplied(t, 5)
	if got[4].target != "e" || got[4].action.Do != "off" {
		t.Fatalf("after reload: %+v", got[4])
	}
}

func TestWebhookFailureDoesNotBlock(t *testing.T) {
	release := make(chan struct{})
	hits := make(chan string, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		hits <- req.Header.Get("Content-Type")
		select {
		case <-release:
		case <-req.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	r := newRig(t, map[string]string{"hook.yaml": `name: hook
steps:
  - {at: 0s, webhook: {url: "` + srv.URL + `", body: {live: true}, timeout: 100ms, retries: 0}}
  - {at: 0s, target: a, do: "on"}
  - {at: 1s, target: b, do: "on"}
`})
	if _, err := r.e.Fire("hook", "test", nil); err != nil {
		t.Fatal(err)
	}
	if ct := <-hits; ct != "application/json" {
		t.Fatalf("content type %q", ct)
	}
	r.waitApplied(t, 1)
	r.advance(t, 1, time.Second)
	r.waitApplied(t, 2) // b ran while the webhook still hung
	waitFor(t, "failed", func() bool { return r.state("hook").State == StateFailed })
	st := r.state("hook")
	if !strings.Contains(st.Reason, "step 1 (webhook)") || !strings.Contains(st.Reason, "no answer within 100ms") {
		t.Fatalf("reason %q", st.Reason)
	}
	d, _ := r.e.Get("hook")
	if d.LastRun.Steps[0].Pending || d.LastRun.Steps[2].Error != "" || *d.LastRun.Steps[2].LatenessUS != 0 {
		t.Fatalf("records %+v", d.LastRun.Steps)
	}
}

func TestWebhookRetries(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if n.Add(1) < 3 {
			w.WriteHeader(http.StatusBadGateway)
		}
	}))
	defer srv.Close()
	r := newRig(t, map[string]string{"hook.yaml": "name: hook\nsteps:\n  - {at: 0s, webhook: {url: \"" + srv.URL + "\", body: go, retries: 2}}\n"})
	if _, err := r.e.Fire("hook", "test", nil); err != nil {
		t.Fatal(err)
	}
	// Each retry backs off on the engine clock: keep moving it until the
	// run ends (on a slow, emulated machine that can take a while).
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := r.state("hook").State
		if st == StateDone || st == StateFailed || st == StateCancelled {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhook run still %s after 30 s", st)
		}
		if r.clk.WaitForTimers(1, 20*time.Millisecond) {
			r.clk.Advance(10 * time.Second)
		}
	}
	if st := r.state("hook"); st.State != StateDone || n.Load() != 3 {
		t.Fatalf("state %+v after %d tries", st, n.Load())
	}
}

func TestPublishPassthrough(t *testing.T) {
	r := newRig(t, map[string]string{"relay.yaml": `name: relay
triggers:
  - mqtt: shop/+/start
steps:
  - {at: 0s, publish: {topic: studio/announce, passthrough: true, payload: fallback}}
  - {at: 0s, publish: {topic: studio/lights, payload: {scene: live, level: 80}, qos: 1, retain: true}}
`})
	in := []byte(`{"drop":"sneaker-42", "note": "unchanged  spacing"}`)
	if err := r.mq.deliver("shop/drop/start", in, false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "2 publishes", func() bool { return len(r.mq.pubs()) == 2 })
	waitFor(t, "done", func() bool { return r.state("relay").State == StateDone })
	byTopic := map[string]string{}
	for _, m := range r.mq.pubs() {
		byTopic[m.Topic] = string(m.Payload)
		if m.Topic == "studio/lights" && !m.Retained {
			t.Error("retain lost")
		}
	}
	if byTopic["studio/announce"] != string(in) {
		t.Fatalf("passthrough sent %q", byTopic["studio/announce"])
	}
	if byTopic["studio/lights"] != `{"level":80,"scene":"live"}` {
		t.Fatalf("payload %q", byTopic["studio/lights"])
	}
	// Fired with no payload, passthrough falls back to the step's.
	if _, err := r.e.Fire("relay", "test", nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "4 publishes", func() bool { return len(r.mq.pubs()) == 4 })
	for _, m := range r.mq.pubs()[2:] {
		if m.Topic == "studio/announce" && string(m.Payload) != "fallback" {
			t.Fatalf("fallback %q", m.Payload)
		}
	}
}

func TestBadTriggerPayloads(t *testing.T) {
	r := newRig(t, map[string]string{"drop.yaml": scene("ignore"), "warn.yaml": `name: warn
triggers:
  - mqtt: shop/alert
    match: {level: warn}
steps:
  - {at: 0s, target: e, do: "on"}
`})
	big := make([]byte, 1<<20)
	cases := []struct {
		topic   string
		payload []byte
		ret     bool
		want    string
	}{
		{"fieldkit/test/scene/drop/run", []byte("go now"), false, "payload is not JSON"},
		{"fieldkit/test/scene/drop/run", big, false, "larger than the 65536-byte limit"},
		{"fieldkit/test/scene/drop/run", nil, true, "retained run message is ignored"},
		{"fieldkit/test/scene/nope/run", []byte("{}"), false, `scene "nope": no such scene`},
		{"fieldkit/test/scene/drop/run", nil, false, "empty run message is ignored"},
		{"fieldkit/test/scene/drop/run", []byte("{}"), true, "retained run message is ignored, and cleared"},
		{"fieldkit/test/scene/drop/cancel", nil, false, "empty cancel message is ignored"},
		{"fieldkit/test/scene/drop/cancel", []byte("{}"), true, "retained cancel message is ignored"},
		{"shop/alert", []byte("warn"), false, "payload is not JSON"},
		{"shop/alert", []byte(`["warn"]`), false, "not a JSON object, and the trigger matches on its fields (level)"},
		{"shop/alert", big, false, "larger than"},
	}
	for _, c := range cases {
		err := r.mq.deliver(c.topic, c.payload, c.ret)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %.20q: got %v, want %q", c.topic, c.payload, err, c.want)
		}
	}
	if n := len(r.rec.all()); n != 0 {
		t.Fatalf("%d applies from bad payloads", n)
	}
	// Nothing else was disturbed: good messages still work.
	if err := r.mq.deliver("shop/alert", []byte(`{"level":"info"}`), false); err != nil {
		t.Fatal(err)
	}
	if err := r.mq.deliver("shop/alert", []byte(`{"level":"warn"}`), false); err != nil {
		t.Fatal(err)
	}
	if err := r.mq.deliver("fieldkit/test/scene/drop/run", []byte(`{"by":"test"}`), false); err != nil {
		t.Fatal(err)
	}
	r.waitApplied(t, 3)
	// A second run while running is ignored quietly (no error reply).
	if err := r.mq.deliver("fieldkit/test/scene/drop/run", []byte("{}"), false); err != nil {
		t.Fatalf("ignored fire answered as an error: %v", err)
	}
}

func TestBusAndButtonTriggers(t *testing.T) {
	r := newRig(t, map[string]string{"swap.yaml": `name: swap
policy: queue
triggers:
  - event: battery/+/alert
    match: {level: warn, pack.cells: 4}
  - button: big-red
steps:
  - {at: 0s, target: a, do: haptic, pattern: swap-battery}
`})
	r.bus.Publish("battery/rig1/alert", []byte(`{"level":"ok","pack":{"cells":4}}`))
	r.bus.Publish("battery/rig1/alert", []byte(`{"level":"warn","pack":{"cells":4}}`))
	r.waitApplied(t, 1)
	waitFor(t, "done", func() bool { return r.state("swap").State == StateDone })
	r.bus.Publish("button/small/press", nil)
	r.bus.Publish("button/big-red/press", nil)
	r.waitApplied(t, 2)
	waitFor(t, "run 2 done", func() bool { st := r.state("swap"); return st.State == StateDone && st.Run == 2 })
	d, _ := r.e.Get("swap")
	if n := len(r.rec.all()); n != 2 || d.LastRun.Trigger != "button big-red" {
		t.Fatalf("%d applies, last trigger %q", n, d.LastRun.Trigger)
	}
}

func TestScheduleTriggers(t *testing.T) {
	r := newRig(t, map[string]string{"show.yaml": `name: show
triggers:
  - daily: "19:02"
  - cron: "*/5 * * * *"
steps:
  - {at: 0s, target: a, do: "on"}
`})
	// t0 is 19:00; 19:02 (daily) and 19:05 (cron) are due. The engine
	// wakes at least every 30 s.
	for r.clk.Now().Before(t0.Add(2 * time.Minute)) {
		r.advance(t, 1, 30*time.Second)
	}
	r.waitApplied(t, 1)
	for r.clk.Now().Before(t0.Add(5 * time.Minute)) {
		r.advance(t, 1, 30*time.Second)
	}
	got := r.waitApplied(t, 2)
	if !got[0].at.Equal(t0.Add(2*time.Minute)) || !got[1].at.Equal(t0.Add(5*time.Minute)) {
		t.Fatalf("fired at %v and %v", got[0].at, got[1].at)
	}
	if d, _ := r.e.Get("show"); d.LastRun.Trigger != "schedule 0-59/5 * * * *" && d.LastRun.Trigger != "schedule */5 * * * *" {
		t.Fatalf("trigger %q", d.LastRun.Trigger)
	}
	// An NTP step far ahead skips the missed fires instead of replaying them.
	r.clk.Set(t0.Add(3 * time.Hour))
	r.advance(t, 1, 30*time.Second)
	r.advance(t, 1, 30*time.Second)
	if n := len(r.rec.all()); n != 2 {
		t.Fatalf("%d applies after a clock jump", n)
	}
}

func TestTargetErrorFailsRun(t *testing.T) {
	r := newRig(t, map[string]string{"drop.yaml": "name: drop\nsteps:\n  - {at: 0s, targets: [a, b], do: \"on\"}\n"})
	r.tgts["a"].(*recTarget).fail = errors.New("pin busy")
	if _, err := r.e.Fire("drop", "test", nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "failed", func() bool { return r.state("drop").State == StateFailed })
	if names := r.rec.names(); !reflect.DeepEqual(names, []string{"a", "b"}) {
		t.Fatalf("applies %v: one failing output must not stop the others", names)
	}
	if st := r.state("drop"); st.Reason != "step 1 (cue): a: pin busy" {
		t.Fatalf("reason %q", st.Reason)
	}
}
