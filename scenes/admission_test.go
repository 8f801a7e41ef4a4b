package scenes

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"fieldkit/internal/httpapi"
)

// A queue scene takes queue_limit fires behind the running one; the
// next is refused with a reason and a time to come back, on HTTP as 429
// with Retry-After.
func TestQueueFullIsRefusedWithRetryAfter(t *testing.T) {
	r := newRig(t, map[string]string{"drop.yaml": scene("queue")})
	rt := httpapi.NewRouter(roleHeader{}, quietLog())
	r.e.Routes(rt)
	srv := httptest.NewServer(rt.Handler())
	defer srv.Close()
	if _, err := r.e.Fire("drop", "first", nil); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < DefaultQueueLimit; i++ {
		if out, err := r.e.Fire("drop", fmt.Sprintf("q%d", i), nil); out != Queued || err != nil {
			t.Fatalf("fire %d: %q %v", i, out, err)
		}
	}
	_, err := r.e.Fire("drop", "one too many", nil)
	var ref *Refusal
	if !errors.As(err, &ref) || !errors.Is(err, ErrQueueFull) || ref.RetryAfter != 20*time.Second {
		t.Fatalf("fire beyond the queue: %v (%+v)", err, ref)
	}
	req, _ := http.NewRequest("POST", srv.URL+"/api/scenes/drop/run", strings.NewReader("{}"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "20" {
		t.Fatalf("HTTP %d, Retry-After %q; want 429 and 20", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	// Over MQTT the refusal is the handler's error, answered on .../error.
	if err := r.mq.deliver("fieldkit/test/scene/drop/run", []byte("{}"), false); err == nil || !strings.Contains(err.Error(), "queue is full") {
		t.Fatalf("MQTT fire beyond the queue: %v", err)
	}
	if n := testCount(t, r.e, "drop", "refused_queue_full"); n != 3 {
		t.Fatalf("refused_queue_full counted %v times, want 3", n)
	}
}

// One source may fire a scene rate_limit times a second (as many at
// once); beyond that it is refused until its bucket refills, other
// sources are not.
func TestPerSourceRateLimit(t *testing.T) {
	r := newRig(t, map[string]string{"tap.yaml": "name: tap\npolicy: restart\nsteps:\n  - {at: 0s, target: a, do: \"on\"}\n"}, func(d *Deps) {})
	r.e.cfg.RateLimit = 5
	for i := 0; i < 5; i++ {
		if _, err := r.e.Fire("tap", "mqtt shop/tap", nil); err != nil {
			t.Fatalf("fire %d: %v", i, err)
		}
	}
	_, err := r.e.Fire("tap", "mqtt shop/tap", nil)
	var ref *Refusal
	if !errors.As(err, &ref) || !errors.Is(err, ErrRateLimited) || ref.RetryAfter != 200*time.Millisecond {
		t.Fatalf("sixth fire in a second: %v (%+v)", err, ref)
	}
	if _, err := r.e.Fire("tap", "http", nil); err != nil {
		t.Fatalf("another source: %v", err)
	}
	r.clk.Advance(200 * time.Millisecond)
	if _, err := r.e.Fire("tap", "mqtt shop/tap", nil); err != nil {
		t.Fatalf("after a token came back: %v", err)
	}
	if n := testCount(t, r.e, "tap", "refused_rate_limit"); n != 1 {
		t.Fatalf("refused_rate_limit counted %v times", n)
	}
}

// A burst of restarts holds no goroutine or thread per fire: a restart
// waiting for the old run to wind down is replaced by the next one, and
// the last fire's run goes through whole.
func TestRestartBurstHoldsNothing(t *testing.T) {
	r := newRig(t, map[string]string{"drop.yaml": scene("restart")})
	r.e.cfg.RateLimit = -1
	if _, err := r.e.Fire("drop", "first", nil); err != nil {
		t.Fatal(err)
	}
	r.waitApplied(t, 2)
	before := runtime.NumGoroutine()
	for i := 0; i < 1000; i++ {
		if out, err := r.e.Fire("drop", "burst "+strconv.Itoa(i), nil); out != Restarted || err != nil {
			t.Fatalf("restart %d: %q %v", i, out, err)
		}
	}
	if g := runtime.NumGoroutine(); g > before+10 {
		t.Fatalf("%d goroutines after 1000 restarts, %d before", g, before)
	}
	waitFor(t, "the last restart running", func() bool {
		d, _ := r.e.Get("drop")
		return d.LastRun != nil && d.LastRun.Trigger == "burst 999"
	})
	waitFor(t, "done", func() bool {
		if r.clk.WaitForTimers(1, time.Millisecond) {
			r.clk.Advance(10 * time.Second)
		}
		return r.state("drop").State == StateDone
	})
	got := r.rec.names()
	if !reflect.DeepEqual(got[len(got)-4:], []string{"a", "b", "c", "d"}) {
		t.Fatalf("applies %v: the last run did not go through whole", got)
	}
	d, _ := r.e.Get("drop")
	if d.LastRun.Trigger != "burst 999" || d.LastRun.State != StateDone {
		t.Fatalf("last run %+v", d.LastRun)
	}
	t.Logf("1000 restarts made %d runs", r.state("drop").Run-1)
}

// on_cancel steps run after a cancel, timed from it, recorded on the run;
// a restart does not run them; an empty on_cancel leaves outputs alone.
func TestOnCancel(t *testing.T) {
	r := newRig(t, map[string]string{
		"drop.yaml": `name: drop
policy: restart
steps:
  - {at: 0s, targets: [a, b], do: "on"}
  - {at: 10s, target: c, do: "on"}
on_cancel:
  - {at: 0s, target: a, do: "off"}
  - {at: 500ms, publish: {topic: studio/drop, payload: cancelled}}
  - {at: 1s, target: e, do: pulse, for: 200ms}
`,
		"keep.yaml": "name: keep\nsteps:\n  - {at: 0s, target: d, do: \"on\"}\n  - {at: 5s, target: d, do: \"off\"}\non_cancel: []\n",
	})
	if _, err := r.e.Fire("drop", "test", nil); err != nil {
		t.Fatal(err)
	}
	r.waitApplied(t, 2)
	// A restart cancels without on_cancel.
	if _, err := r.e.Fire("drop", "again", nil); err != nil {
		t.Fatal(err)
	}
	r.waitApplied(t, 4)
	if got := r.rec.names(); !reflect.DeepEqual(got, []string{"a", "b", "a", "b"}) {
		t.Fatalf("after a restart: %v", got)
	}
	r.waitApplied(t, 4)
	r.clk.WaitForTimers(1, 5*time.Second)
	cancelAt := r.clk.Now()
	if ok, err := r.e.Cancel("drop", "http"); !ok || err != nil {
		t.Fatalf("cancel: %v %v", ok, err)
	}
	got := r.waitApplied(t, 5)
	if got[4].target != "a" || got[4].action.Do != "off" || !got[4].at.Equal(cancelAt) {
		t.Fatalf("on_cancel step 1: %+v", got[4])
	}
	if st := r.state("drop"); st.State != StateRunning || !strings.Contains(st.Reason, "on_cancel") {
		t.Fatalf("state while on_cancel runs: %+v", st)
	}
	r.advance(t, 1, 500*time.Millisecond)
	waitFor(t, "on_cancel publish", func() bool { return len(r.mq.pubs()) == 1 })
	r.advance(t, 1, 500*time.Millisecond)
	got = r.waitApplied(t, 6)
	if got[5].target != "e" || !got[5].at.Equal(cancelAt.Add(time.Second)) {
		t.Fatalf("on_cancel step 3: %+v", got[5])
	}
	waitFor(t, "cancelled", func() bool { return r.state("drop").State == StateCancelled })
	d, _ := r.e.Get("drop")
	if len(d.LastRun.OnCancel) != 3 || d.LastRun.OnCancel[2].Actual == nil || d.LastRun.Steps[1].Actual != nil {
		t.Fatalf("record: steps %+v on_cancel %+v", d.LastRun.Steps, d.LastRun.OnCancel)
	}
	if st := r.state("drop"); st.Reason != "cancelled by http" {
		t.Fatalf("reason %q", st.Reason)
	}

	// on_cancel: [] leaves d on.
	if _, err := r.e.Fire("keep", "test", nil); err != nil {
		t.Fatal(err)
	}
	r.waitApplied(t, 7)
	if _, err := r.e.Cancel("keep", "http"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "keep cancelled", func() bool { return r.state("keep").State == StateCancelled })
	if n := len(r.rec.all()); n != 7 {
		t.Fatalf("%d applies: an empty on_cancel must do nothing", n)
	}
}

func TestOnCancelLoadErrors(t *testing.T) {
	ok := "name: x\nsteps:\n  - {at: 0s, target: a, do: \"on\"}\n"
	for src, want := range map[string]string{
		ok + "on_cancel:\n  - {at: 0s, target: strobe, do: \"off\"}\n":                                                                            `scenes/x.yaml:5: on_cancel[0].target: unknown output "strobe"`,
		ok + "on_cancel:\n  - {at: 11s, target: a, do: \"off\"}\n":                                                                                `scenes/x.yaml:5: on_cancel[0].at: 11s is too late`,
		ok + "on_cancel:\n  - {at: 0s, target: a, colour: red}\n":                                                                                 `scenes/x.yaml:5: unknown key "colour" in on_cancel[0]`,
		"name: x\ntriggers:\n  - mqtt: shop/x\nsteps:\n  - {at: 0s, target: a, do: \"on\"}\non_cancel:\n  - {at: 0s, publish: {topic: shop/x}}\n": `scenes/x.yaml:7: scenes would trigger each other for ever: x → x (x on_cancel step 1 publishes shop/x`,
	} {
		err := loadFiles(map[string]string{"x.yaml": src})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v\nwant it to contain %s", err, want)
		}
	}
}

// A retained message on a run topic is refused and cleared on the broker.
func TestRetainedRunIsCleared(t *testing.T) {
	r := newRig(t, map[string]string{"drop.yaml": scene("ignore")})
	if err := r.mq.deliver("fieldkit/test/scene/drop/run", []byte("{}"), true); err == nil || !strings.Contains(err.Error(), "cleared") {
		t.Fatalf("retained run: %v", err)
	}
	pubs := r.mq.pubs()
	if len(pubs) != 1 || pubs[0].Topic != "fieldkit/test/scene/drop/run" || !pubs[0].Retained || len(pubs[0].Payload) != 0 {
		t.Fatalf("publishes %+v, want the retained run cleared", pubs)
	}
	if n := len(r.rec.all()); n != 0 {
		t.Fatalf("%d applies", n)
	}
}

func testCount(t *testing.T, e *Engine, scene, outcome string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(e.met.fires)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["scene"] == scene && labels["outcome"] == outcome {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
