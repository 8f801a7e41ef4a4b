package uplink

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"fieldkit/internal/clock"
	"fieldkit/sync/ingest"
	"fieldkit/sync/receipts"
)

type retainer struct {
	mu   sync.Mutex
	last map[string]string
}

func (r *retainer) SetRetained(t string, p []byte) {
	r.mu.Lock()
	r.last[t] = string(p)
	r.mu.Unlock()
}
func (r *retainer) Prefix() string { return "fieldkit/box1" }

// faultyProxy sits between the uplink and the ingest and misbehaves on
// cue, one fault per request, in order; then it passes requests through.
type faultyProxy struct {
	mu     sync.Mutex
	faults []string
	target http.Handler
	seen   []string
}

func (p *faultyProxy) setTarget(h http.Handler) {
	p.mu.Lock()
	p.target = h
	p.mu.Unlock()
}

func (p *faultyProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	f := ""
	if len(p.faults) > 0 {
		f, p.faults = p.faults[0], p.faults[1:]
	}
	target := p.target
	p.seen = append(p.seen, f+" "+r.Header.Get("Idempotency-Key"))
	p.mu.Unlock()
	forward := func() *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		target.ServeHTTP(rec, r)
		return rec
	}
	hijack := func(partial string) {
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			panic(err)
		}
		buf.WriteString(partial)
		buf.Flush()
		conn.Close()
	}
	switch f {
	case "500":
		http.Error(w, `{"error":"boom"}`, 500)
		return
	case "503-after": // the cloud committed, the answer is lost
		forward()
		http.Error(w, `{"error":"gateway"}`, 503)
		return
	case "429":
		w.Header().Set("Retry-After", "7")
		http.Error(w, `{"error":"slow down"}`, 429)
		return
	case "slow": // committed, but the answer comes after the client gave up
		rec := forward()
		time.Sleep(1200 * time.Millisecond)
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
		return
	case "drop-request": // the connection dies before the cloud sees the batch
		hijack("")
		return
	case "drop": // committed, then the connection dies mid-answer
		rec := forward()
		body := rec.Body.String()
		hijack(fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body[:len(body)/3]))
		return
	case "skip": // a cloud that lost its last batches
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(409)
		w.Write([]byte(`{"expected_seq":1,"error":"send from seq 1"}`))
		return
	}
	rec := forward()
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	w.Write(rec.Body.Bytes())
}

type rig struct {
	l      *receipts.Ledger
	ing    *ingest.Server
	proxy  *faultyProxy
	up     *Uplink
	clk    *clock.Fake
	ret    *retainer
	mu     sync.Mutex
	waits  []time.Duration
	errs   []string
	cancel context.CancelFunc
	done   chan error
}

func newIngest(t *testing.T) *ingest.Server {
	_, key, _ := ed25519.GenerateKey(nil)
	ing, err := ingest.Open(ingest.Options{DB: filepath.Join(t.TempDir(), "cloud.db"), Key: key, TrustOnFirstUse: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ing.Close() })
	return ing
}

func newRig(t *testing.T, faults []string, records int) *rig {
	t.Helper()
	dir := t.TempDir()
	l, err := receipts.Open(receipts.Options{Path: filepath.Join(dir, "r.db"), KeyFile: filepath.Join(dir, "r.key"), Box: "box1",
		BootID: "b", Sync: receipts.SyncFunc(func() bool { return true })})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var wg sync.WaitGroup
	for c := 0; c < 8; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := c; i < records; i += 8 {
				o := receipts.Order{ClientID: fmt.Sprintf("pos-%d", i), Order: fmt.Sprintf("A-%d", i), Items: []receipts.Item{{SKU: "TEE", Qty: 1, Price: 100}},
					Total: 100, Currency: "EUR", Pay: "cash"}
				if _, _, err := l.Append(context.Background(), o); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	r := &rig{l: l, ing: newIngest(t), proxy: &faultyProxy{faults: faults}, clk: clock.NewFake(time.Now()), ret: &retainer{last: map[string]string{}}}
	r.proxy.setTarget(r.ing)
	srv := httptest.NewServer(r.proxy)
	t.Cleanup(srv.Close)
	r.up, err = New(receipts.UplinkConfig{URL: srv.URL, BatchRecords: 100, BatchBytes: 256 << 10}, l, Deps{
		Clock: r.clk, MQTT: r.ret, RequestTimeout: time.Second, Rand: func() float64 { return 0.5 },
		OnRetry: func(d time.Duration, err error) {
			r.mu.Lock()
			r.waits, r.errs = append(r.waits, d), append(r.errs, err.Error())
			r.mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *rig) start(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan error, 1)
	go func() { r.done <- r.up.Run(ctx) }()
	// Drive the fake clock: whenever the uplink waits, let the wait pass.
	go func() {
		for ctx.Err() == nil {
			if r.clk.WaitForTimers(1, 20*time.Millisecond) {
				r.clk.Advance(10 * time.Minute)
			}
			time.Sleep(time.Millisecond) // pacing only
		}
	}()
	t.Cleanup(func() { cancel(); <-r.done })
}

func (r *rig) waitDrained(t *testing.T, n uint64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := r.ing.Box(context.Background(), "box1")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := r.l.Backlog(context.Background())
		if st.Seq == n && b.Count == 0 {
			return
		}
		if time.Now().After(deadline) {
			r.proxy.mu.Lock()
			t.Fatalf("cloud at seq %d, backlog %d, uplink %+v; requests %q", st.Seq, b.Count, r.up.Status(), r.proxy.seen)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (r *rig) exactlyOnce(t *testing.T, n uint64) {
	t.Helper()
	seqs, err := r.ing.Seqs(context.Background(), "box1")
	if err != nil {
		t.Fatal(err)
	}
	if uint64(len(seqs)) != n {
		t.Fatalf("cloud holds %d records, want %d", len(seqs), n)
	}
	for i, s := range seqs {
		if s != uint64(i+1) {
			t.Fatalf("cloud record %d has seq %d", i, s)
		}
	}
	if al, _ := r.ing.Alarms(context.Background()); len(al) != 0 {
		t.Fatalf("alarms: %q", al)
	}
	// The stored checkpoint holds the ledger to what the cloud has.
	rep, err := r.l.Verify(context.Background(), receipts.VerifyOptions{})
	if err != nil || !rep.OK() {
		t.Fatalf("%v %v", err, rep.Problem)
	}
	cp, _ := r.l.LatestCheckpoint(context.Background())
	if cp == nil || !strings.Contains(cp.Checkpoint, fmt.Sprintf(`"acked_through":%d`, n)) {
		t.Fatalf("checkpoint %+v", cp)
	}
}

func TestDrainThroughFaults(t *testing.T) {
	const n = 1000
	faults := []string{"500", "503-after", "429", "", "slow", "drop-request", "", "drop", "500", "", "skip"}
	r := newRig(t, faults, n)
	r.start(t)
	r.waitDrained(t, n)
	r.exactlyOnce(t, n)
	r.mu.Lock()
	waits := append([]time.Duration(nil), r.waits...)
	errs := append([]string(nil), r.errs...)
	r.mu.Unlock()
	// At least one retry per failure except the skip, which rewinds
	// without waiting (a loaded machine may time out a good request too).
	if len(waits) < 7 {
		t.Fatalf("%d retries %v, want at least 7", len(waits), waits)
	}
	saw429 := false
	for i, e := range errs {
		// Match the status, not the digits: a batch "seq 1-429" has them too.
		if strings.Contains(e, "429 Too Many Requests") {
			saw429 = true
			if waits[i] < 7*time.Second {
				t.Fatalf("the 429's Retry-After of 7 s was not honoured: waited %s", waits[i])
			}
		}
	}
	if !saw429 {
		t.Fatalf("no 429 retry among %q", errs)
	}
	for _, w := range waits {
		if w > 5*time.Minute {
			t.Fatalf("wait %s beyond the 5 min cap", w)
		}
	}
	r.ret.mu.Lock()
	got := r.ret.last["fieldkit/box1/receipts/backlog"]
	r.ret.mu.Unlock()
	if !strings.Contains(got, `"count":0`) || !strings.Contains(got, fmt.Sprintf(`"acked_through":%d`, n)) {
		t.Fatalf("retained backlog %s", got)
	}
}

// TestCloudLostRecords swaps the cloud for an empty one mid-drain: its
// genuine 409 with the expected seq makes the uplink resend from there.
func TestCloudLostRecords(t *testing.T) {
	const n = 600
	r := newRig(t, nil, n)
	r.start(t)
	r.waitDrained(t, n)
	fresh := newIngest(t)
	r.proxy.setTarget(fresh)
	r.ing = fresh
	for i := 0; i < 50; i++ {
		o := receipts.Order{ClientID: fmt.Sprintf("late-%d", i), Order: "B", Items: []receipts.Item{{SKU: "CAP", Qty: 2, Price: 50}}, Total: 100, Currency: "EUR", Pay: "card"}
		if _, _, err := r.l.Append(context.Background(), o); err != nil {
			t.Fatal(err)
		}
	}
	r.waitDrained(t, n+50)
	r.exactlyOnce(t, n+50)
}

func TestParkOnRefusal(t *testing.T) {
	r := newRig(t, nil, 10)
	r.proxy.setTarget(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, `{"error":"token revoked"}`, http.StatusForbidden)
	}))
	r.start(t)
	deadline := time.Now().Add(10 * time.Second)
	for r.up.Status().State != Parked {
		if time.Now().After(deadline) {
			t.Fatalf("status %+v", r.up.Status())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if st := r.up.Status(); !strings.Contains(st.Reason, "403") || st.Count != 10 {
		t.Fatalf("%+v", st)
	}
	for _, c := range r.up.Checks() {
		if c.Name == "receipt backlog" {
			if res := c.Run(context.Background()); res.Status != "fail" {
				t.Fatalf("%+v", res)
			}
		}
	}
	r.proxy.setTarget(r.ing)
	r.up.Resume()
	r.waitDrained(t, 10)
	r.exactlyOnce(t, 10)
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		v    string
		want time.Duration
	}{
		{"", 0}, {"7", 7 * time.Second}, {"-1", 0}, {"soon", 0},
		{"Sun, 01 Jun 2025 12:00:30 GMT", 30 * time.Second},
		{"Sun, 01 Jun 2025 11:00:00 GMT", 0},
	} {
		if got := retryAfter(tc.v, now); got != tc.want {
			t.Errorf("%q: %s, want %s", tc.v, got, tc.want)
		}
	}
	for code, want := range map[int]bool{408: true, 425: true, 429: true, 500: true, 503: true, 400: false, 401: false, 404: false, 413: false, 422: false} {
		if retryable(code) != want {
			t.Errorf("%d retryable=%v", code, !want)
		}
	}
}
