package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"fieldkit/internal/bus"
	"fieldkit/internal/mqttc"
	"fieldkit/internal/testutil"
	"fieldkit/printer/fake"
	"fieldkit/printer/label"
	"fieldkit/printer/queue"
	"fieldkit/printer/status"
)

// fakeMQTT records what the service hands the MQTT connection.
type fakeMQTT struct {
	mu       sync.Mutex
	retained map[string][]byte
	handlers map[string]mqttc.Handler
}

func newFakeMQTT() *fakeMQTT {
	return &fakeMQTT{retained: map[string][]byte{}, handlers: map[string]mqttc.Handler{}}
}

func (m *fakeMQTT) Handle(filter string, h mqttc.Handler) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.handlers[filter] = h
	return nil
}

func (m *fakeMQTT) SetRetained(t string, p []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.retained[t] = append([]byte(nil), p...)
}

func (m *fakeMQTT) Prefix() string { return "fieldkit/test" }

func (m *fakeMQTT) state(t *testing.T, name string) PrinterState {
	t.Helper()
	m.mu.Lock()
	b := m.retained["fieldkit/test/printer/"+name+"/state"]
	m.mu.Unlock()
	var st PrinterState
	if len(b) > 0 {
		if err := json.Unmarshal(b, &st); err != nil {
			t.Fatalf("retained state %s: %v", b, err)
		}
	}
	return st
}

func (m *fakeMQTT) handler(filter string) mqttc.Handler {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.handlers[filter]
}

// rig is a service with one ESC/POS printer on a pseudo-terminal fake,
// reached through its stable link as a serial printer.
type rig struct {
	t    *testing.T
	dir  string
	fp   *fake.Printer
	link string
	cfg  Config
	bus  *bus.Bus
	mq   *fakeMQTT
	svc  *Service
	stop func()
}

const fastBaud = 921600

func newRig(t *testing.T, baud int) *rig {
	t.Helper()
	dir := t.TempDir()
	r := &rig{t: t, dir: dir, link: filepath.Join(dir, "printer-counter"), bus: bus.New(nil), mq: newFakeMQTT()}
	fp, err := fake.New(&fake.Opts{Lang: fake.ESCPOS, WidthDots: 576, Baud: baud, BufferBytes: 4096, Link: r.link, NoRender: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fp.OpenPTY(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fp.Close() })
	r.fp = fp
	r.cfg = Config{"counter": {
		Profile:   label.Profile{Language: label.ESCPOS, WidthDots: 576},
		Transport: "serial",
		Path:      r.link,
		Baud:      baud,
		// Generous: on a loaded machine the fake printer's goroutine can take
		// well over 150 ms to answer, and a late answer makes a printed job
		// uncertain.
		StatusTimeout: 500 * time.Millisecond,
		PollInterval:  20 * time.Millisecond,
		MaxAttempts:   3,
	}}
	return r
}

func (r *rig) start() {
	r.t.Helper()
	svc, err := New(r.cfg, Deps{DataDir: r.dir, Bus: r.bus, MQTT: r.mq})
	if err != nil {
		r.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	r.svc = svc
	r.stop = func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				r.t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			r.t.Fatal("Run did not return after cancel")
		}
	}
	r.t.Cleanup(func() {
		if r.stop != nil {
			r.stop()
			r.stop = nil
		}
	})
}

func (r *rig) halt() {
	r.stop()
	r.stop = nil
}

func textLabel(lines ...string) json.RawMessage {
	var els []string
	for _, l := range lines {
		els = append(els, fmt.Sprintf(`{"text":%q}`, l))
	}
	els = append(els, `{"cut":true}`)
	return json.RawMessage(`{"elements":[` + strings.Join(els, ",") + `]}`)
}

func (r *rig) submit(id string, lbl json.RawMessage) queue.Job {
	r.t.Helper()
	j, _, err := r.svc.Submit(context.Background(), "counter", JobRequest{ID: id, Label: lbl})
	if err != nil {
		r.t.Fatal(err)
	}
	return j
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, 10*time.Second, what, cond)
}

func (r *rig) job(id string) queue.Job {
	r.t.Helper()
	j, err := r.svc.Store().Get(context.Background(), id)
	if err != nil {
		r.t.Fatal(err)
	}
	return j
}

func (r *rig) waitJob(id string, want queue.State) queue.Job {
	r.t.Helper()
	var j queue.Job
	waitFor(r.t, "job "+id+" to be "+string(want), func() bool {
		j = r.job(id)
		return j.State == want
	})
	return j
}

func (r *rig) printedTexts() map[string]int {
	out := map[string]int{}
	for _, l := range r.fp.Labels() {
		for _, tx := range l.Texts() {
			out[tx]++
		}
	}
	return out
}

func TestPrintsAndConfirms(t *testing.T) {
	r := newRig(t, fastBaud)
	r.start()
	r.submit("order-1", textLabel("ORDER 1"))
	again, created, err := r.svc.Submit(context.Background(), "counter", JobRequest{ID: "order-1", Label: textLabel("ORDER 1")})
	if err != nil || created || again.ID != "order-1" {
		t.Fatalf("same id again = %+v, created=%v, %v", again, created, err)
	}
	r.submit("order-2", textLabel("ORDER 2"))
	j := r.waitJob("order-2", queue.Done)
	if j.Attempts != 1 || j.Printed == nil {
		t.Fatalf("done job = %+v", j)
	}
	r.waitJob("order-1", queue.Done)
	if n := r.fp.Printed(); n != 2 {
		t.Fatalf("fake printed %d labels, want 2", n)
	}
	if got := r.printedTexts(); got["ORDER 1"] != 1 || got["ORDER 2"] != 1 {
		t.Fatalf("printed texts = %v", got)
	}
	waitFor(t, "retained state ready with an empty queue", func() bool {
		st := r.mq.state(t, "counter")
		return st.State == status.Ready && st.QueueDepth == 0 && st.Device != ""
	})
	if _, _, err := r.svc.Submit(context.Background(), "nope", JobRequest{Label: textLabel("x")}); !errors.Is(err, ErrUnknownPrinter) {
		t.Fatalf("unknown printer: %v", err)
	}
	if _, _, err := r.svc.Submit(context.Background(), "counter", JobRequest{Label: json.RawMessage(`{"elements":[]}`)}); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("empty label: %v", err)
	}
}

func TestPaperOutParksAndResumes(t *testing.T) {
	r := newRig(t, fastBaud)
	events := r.bus.Subscribe(StateTopic("counter"), 64)
	defer events.Close()
	r.fp.SetState(fake.PaperOut)
	r.start()
	r.submit("a", textLabel("A"))
	r.submit("b", textLabel("B"))
	r.waitJob("a", queue.Parked)
	r.waitJob("b", queue.Parked)

	// The bus carries the parked state, with the reason.
	waitEvent(t, events, func(st PrinterState) bool {
		return st.Parked && st.State == status.PaperOut && st.QueueDepth == 2
	})
	if st := r.mq.state(t, "counter"); !st.Parked || st.State != status.PaperOut {
		t.Fatalf("retained state = %+v, want parked paper_out", st)
	}
	if r.fp.Printed() != 0 || r.fp.Stats().Pending != 0 {
		t.Fatalf("something was sent to a printer without paper: %+v", r.fp.Stats())
	}

	r.fp.SetState(fake.Ready)
	r.waitJob("a", queue.Done)
	r.waitJob("b", queue.Done)
	waitEvent(t, events, func(st PrinterState) bool { return !st.Parked && st.State == status.Ready })
	if got := r.printedTexts(); got["A"] != 1 || got["B"] != 1 || r.fp.Printed() != 2 {
		t.Fatalf("printed %v", got)
	}
}

func waitEvent(t *testing.T, sub *bus.Subscription, match func(PrinterState) bool) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev := <-sub.C():
			var st PrinterState
			if err := json.Unmarshal(ev.Payload, &st); err != nil {
				t.Fatalf("bad state event %s: %v", ev.Payload, err)
			}
			if match(st) {
				return
			}
		case <-timeout:
			t.Fatal("timed out waiting for a state event")
		}
	}
}

func TestSilentOrGarbledStatusNeverPrints(t *testing.T) {
	for _, tc := range []struct {
		fs   fake.State
		want status.State
	}{
		{fake.Silent, status.Unknown},
		{fake.Garbage, status.Error},
	} {
		t.Run(tc.fs.String(), func(t *testing.T) {
			r := newRig(t, fastBaud)
			r.fp.SetState(tc.fs)
			r.start()
			r.submit("x", textLabel("X"))
			waitFor(t, "state "+tc.want.String(), func() bool {
				for _, st := range r.svc.States() {
					if st.State == tc.want && len(st.Flags) > 0 {
						return true
					}
				}
				return false
			})
			// Let the worker poll a few more times: it must keep
			// refusing to send, and keep running.
			q := r.fp.Stats().Queries
			if err := r.fp.WaitQueries(ctxT(t), q+4); err != nil {
				t.Fatal(err)
			}
			if j := r.job("x"); j.State != queue.Queued || j.Attempts != 0 {
				t.Fatalf("job = %+v; want still queued, never begun", j)
			}
			if r.fp.Printed() != 0 {
				t.Fatal("printed on a printer whose status was not ready")
			}
			r.fp.SetState(fake.Ready)
			r.waitJob("x", queue.Done)
			if r.fp.Printed() != 1 {
				t.Fatalf("printed %d, want 1", r.fp.Printed())
			}
		})
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestUnplugMidJobIsUncertainNotReprinted(t *testing.T) {
	// A slow line and a long label, so that the cable is pulled while
	// the label is still going through.
	r := newRig(t, 19200)
	alerts := r.bus.Subscribe(AlertTopic("counter"), 8)
	defer alerts.Close()
	r.start()
	var lines []string
	for i := range 60 {
		lines = append(lines, fmt.Sprintf("LINE %02d OF A LONG LABEL", i))
	}
	r.submit("long", textLabel(lines...))
	waitFor(t, "the label to start arriving", func() bool { return r.fp.Stats().Received > 200 })
	if err := r.fp.Unplug(); err != nil {
		t.Fatal(err)
	}
	j := r.waitJob("long", queue.Uncertain)
	if !j.WriteStarted || j.Error == "" {
		t.Fatalf("uncertain job = %+v", j)
	}
	select {
	case ev := <-alerts.C():
		var a Alert
		json.Unmarshal(ev.Payload, &a)
		if a.Job != "long" || a.State != queue.Uncertain {
			t.Fatalf("alert = %+v", a)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no alert for the uncertain job")
	}

	// Plugged back in under a new device name: the worker finds it
	// through the link, prints new work, and leaves the uncertain job
	// alone until the operator says so.
	old := r.svc.States()[0].Device
	if err := r.fp.Plug(); err != nil {
		t.Fatal(err)
	}
	r.submit("next", textLabel("NEXT"))
	r.waitJob("next", queue.Done)
	if dev := r.svc.States()[0].Device; dev == old {
		t.Errorf("device still %s after replug under a new name", dev)
	}
	if got := r.printedTexts(); got["NEXT"] != 1 || got["LINE 00 OF A LONG LABEL"] != 0 {
		t.Fatalf("printed %v; want only NEXT (the cut-off label was lost, not reprinted)", got)
	}
	if j := r.job("long"); j.State != queue.Uncertain {
		t.Fatalf("uncertain job became %s without an operator", j.State)
	}

	if _, err := r.svc.Reprint(context.Background(), "long"); err != nil {
		t.Fatal(err)
	}
	r.waitJob("long", queue.Done)
	if got := r.printedTexts(); got["LINE 59 OF A LONG LABEL"] != 1 {
		t.Fatalf("after reprint: %v", got)
	}
}

func TestUnpluggedBeforeWriteRetriesThenFails(t *testing.T) {
	r := newRig(t, fastBaud)
	r.fp.Unplug()
	r.start()
	r.submit("w", textLabel("W"))
	waitFor(t, "printer offline", func() bool { return r.svc.States()[0].State == status.Offline })
	if j := r.job("w"); j.State != queue.Queued || j.Attempts != 0 {
		t.Fatalf("job on an absent printer = %+v; want queued, not begun", j)
	}
	r.fp.Plug()
	r.waitJob("w", queue.Done)
}

func TestStopMidQueueLeavesNothingUncertain(t *testing.T) {
	r := newRig(t, 115200)
	r.start()
	const n = 30
	for i := range n {
		r.submit(fmt.Sprintf("s-%02d", i), textLabel(fmt.Sprintf("S %02d", i)))
	}
	if err := r.fp.WaitPrinted(ctxT(t), 5); err != nil {
		t.Fatal(err)
	}
	r.halt() // a clean stop while printing: the label being sent is finished and confirmed
	ctx := context.Background()
	if c, _ := r.svc.Store().Count(ctx, "counter", queue.Printing, queue.Uncertain); c != 0 {
		t.Fatalf("%d jobs printing or uncertain after a clean stop", c)
	}
	if r.fp.Printed() == n {
		t.Fatal("the queue drained before the stop; the test proved nothing")
	}
	r.start()
	r.waitJob(fmt.Sprintf("s-%02d", n-1), queue.Done)
	if c, _ := r.svc.Store().Count(ctx, "counter", queue.Done); c != n {
		t.Fatalf("%d done, want %d", c, n)
	}
	texts := r.printedTexts()
	for i := range n {
		if c := texts[fmt.Sprintf("S %02d", i)]; c != 1 {
			t.Fatalf("S %02d printed %d times", i, c)
		}
	}
}
