package receipts

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"fieldkit/internal/clock"
	"fieldkit/internal/sqlitex"
)

var t0 = time.Date(2025, 6, 1, 18, 0, 0, 0, time.UTC)

type testLedger struct {
	*Ledger
	dir    string
	clk    *clock.Fake
	synced bool
	next   int
}

func openTest(t *testing.T, mod func(*Options)) *testLedger {
	t.Helper()
	dir := t.TempDir()
	tl := &testLedger{dir: dir, clk: clock.NewFake(t0), synced: true}
	o := Options{
		Path: filepath.Join(dir, "r.db"), KeyFile: filepath.Join(dir, "r.key"), Box: "box1",
		Clock: tl.clk, Sync: SyncFunc(func() bool { return tl.synced }), BootID: "boot-1",
	}
	if mod != nil {
		mod(&o)
	}
	l, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	tl.Ledger = l
	return tl
}

func order(n int) Order {
	return Order{ClientID: fmt.Sprintf("pos1-%04d", n), Order: fmt.Sprintf("A-%04d", n),
		Items: []Item{{SKU: "TEE-BLK-M", Qty: 1, Price: 2500}, {SKU: "CAP", Qty: 2, Price: 1000}},
		Total: 4500, Currency: "EUR", Pay: "card", Buyer: &Buyer{Name: "Sam R."}}
}

func appendN(t *testing.T, l *testLedger, n int) []Signed {
	t.Helper()
	var out []Signed
	for k := 0; k < n; k++ {
		l.next++
		i := l.next
		s, replay, err := l.Append(context.Background(), order(i))
		if err != nil || replay {
			t.Fatalf("append %d: %v replay=%v", i, err, replay)
		}
		l.clk.Advance(time.Second)
		out = append(out, s)
	}
	return out
}

func TestAppendChainsAndVerifies(t *testing.T) {
	l := openTest(t, nil)
	ss := appendN(t, l, 5)
	for i, s := range ss {
		r, err := s.Decode()
		if err != nil {
			t.Fatal(err)
		}
		if r.Seq != uint64(i+1) || r.Turnover != int64(4500*(i+1)) || r.Box != "box1" || r.Boot != "boot-1" || !r.ClockSynced {
			t.Errorf("record %d: %+v", i+1, r)
		}
		want := Genesis("box1", l.PublicKey().ID)
		if i > 0 {
			want = ss[i-1].Hash
		}
		if r.Prev != want {
			t.Errorf("record %d prev %s, want %s", i+1, r.Prev, want)
		}
		if r.Buyer == nil || r.Buyer.Name != "Sam R." {
			t.Errorf("record %d buyer %+v", i+1, r.Buyer)
		}
	}
	rep, err := l.Verify(context.Background(), VerifyOptions{First: l.PublicKey().Pub, Current: l.PublicKey().Pub})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Count != 5 || rep.Turnover != 22500 || rep.Last != 5 {
		t.Fatalf("report %+v problem %v", rep, rep.Problem)
	}
	got, err := l.Get(context.Background(), 3)
	if err != nil || got != ss[2] {
		t.Fatalf("get 3: %v %+v", err, got)
	}
	if _, err := l.Get(context.Background(), 99); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get 99: %v", err)
	}
}

func TestKeyFileMode(t *testing.T) {
	l := openTest(t, nil)
	st, err := os.Stat(l.o.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("key mode %04o", st.Mode().Perm())
	}
	if err := os.Chmod(l.o.KeyFile, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKey(l.o.KeyFile); !errors.Is(err, ErrKeyMode) {
		t.Fatalf("loading a world-readable key: %v", err)
	}
	if r := CheckKeyFile(l.o.KeyFile); r.Status != "fail" || r.Fix == "" {
		t.Fatalf("doctor: %+v", r)
	}
}

func TestIdempotentClientID(t *testing.T) {
	l := openTest(t, nil)
	a, replay, err := l.Append(context.Background(), order(1))
	if err != nil || replay {
		t.Fatal(err, replay)
	}
	// The same order again is a retry: the first receipt, nothing new.
	b, replay, err := l.Append(context.Background(), order(1))
	if err != nil || !replay || a != b {
		t.Fatalf("retry: replay=%v err=%v same=%v", replay, err, a == b)
	}
	// The same client_id for another order is refused, naming the stored
	// receipt: answering it with the old receipt would leave the new sale
	// unrecorded.
	o := order(1)
	o.Total, o.Items = 12000, []Item{{SKU: "X", Qty: 1, Price: 12000}}
	_, replay, err = l.Append(context.Background(), o)
	if StatusOf(err) != 409 || replay || !strings.Contains(err.Error(), "seq 1") {
		t.Fatalf("reused client_id: replay=%v err=%v", replay, err)
	}
	if h, _ := l.Head(context.Background()); h.Seq != 1 {
		t.Fatalf("head %d after a replay and a conflict", h.Seq)
	}
}

func TestDiscreetKeepsOnlyToken(t *testing.T) {
	l := openTest(t, func(o *Options) { o.DiscreetDefault = true })
	s, _, err := l.Append(context.Background(), order(1))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(s.Record, "Sam") {
		t.Fatalf("discreet record holds the name: %s", s.Record)
	}
	r, _ := s.Decode()
	if r.Buyer == nil || len(r.Buyer.Token) < 20 || r.Buyer.Name != "" {
		t.Fatalf("buyer %+v", r.Buyer)
	}
	no := false
	o := order(2)
	o.Discreet = &no
	s, _, _ = l.Append(context.Background(), o)
	if !strings.Contains(s.Record, `"name":"Sam R."`) {
		t.Fatalf("discreet=false still hid the buyer: %s", s.Record)
	}
}

func TestClockUnsyncedIsRecorded(t *testing.T) {
	l := openTest(t, nil)
	l.synced = false
	l.clk.Set(time.Unix(0, 0))
	s, _, _ := l.Append(context.Background(), order(1))
	if !strings.Contains(s.Record, `"ts":"1970-01-01T00:00:00.000Z","clock_synced":false`) {
		t.Fatalf("record %s", s.Record)
	}
}

func TestTimeBackwardsIsAWarning(t *testing.T) {
	l := openTest(t, nil)
	appendN(t, l, 2)
	l.clk.Set(t0.Add(-time.Hour))
	appendN(t, l, 1)
	rep, err := l.Verify(context.Background(), VerifyOptions{})
	if err != nil || !rep.OK() {
		t.Fatalf("%v %+v", err, rep)
	}
	if len(rep.Warnings) != 1 || !strings.Contains(rep.Warnings[0], "record 3: time went backwards") {
		t.Fatalf("warnings %q", rep.Warnings)
	}
}

// TestGroupCommit holds the database's write lock from another connection
// so that the writer stalls on its first transaction, queues more appends
// behind it, and checks they all share the second transaction.
func TestGroupCommit(t *testing.T) {
	l := openTest(t, nil)
	other, err := sqlitex.Open(l.o.Path, sqlitex.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	conn, err := other.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	send := func(i int) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, err := l.Append(context.Background(), order(i))
			errs <- err
		}()
	}
	// pickedUp waits until the writer has built want appends into
	// batches.
	pickedUp := func(want int64) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for l.built.Load() < want {
			if time.Now().After(deadline) {
				t.Fatalf("only %d appends queued, %d built", l.queued.Load(), l.built.Load())
			}
			time.Sleep(time.Millisecond)
		}
	}
	// The first append goes into a transaction that stalls on the lock;
	// the others arrive while it waits.
	send(1)
	pickedUp(1)
	for i := 2; i <= n; i++ {
		send(i)
	}
	pickedUp(n)
	if _, err := conn.ExecContext(context.Background(), "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	st := l.Stats()
	// The first transaction stalled with whatever the writer had picked
	// up; everything else queued behind it and must share one more.
	if st.Records != n || st.Commits > 2 {
		t.Fatalf("%d records in %d commits; want %d in at most 2", st.Records, st.Commits, n)
	}
	if rep, _ := l.Verify(context.Background(), VerifyOptions{}); !rep.OK() {
		t.Fatal(rep.Problem)
	}
}

func TestDiskBudget(t *testing.T) {
	var mu sync.Mutex
	var levels []int
	l := openTest(t, func(o *Options) {
		o.DiskBudget = 200 << 10
		o.OnAlarm = func(level int, _ string) { mu.Lock(); levels = append(levels, level); mu.Unlock() }
	})
	var err error
	i := 0
	for err == nil && i < 5000 {
		i++
		o := order(i)
		o.Order = strings.Repeat("x", 150)
		_, _, err = l.Append(context.Background(), o)
	}
	if !errors.Is(err, ErrDiskFull) || StatusOf(err) != 507 {
		t.Fatalf("after %d appends: %v", i, err)
	}
	mu.Lock()
	got := fmt.Sprint(levels)
	mu.Unlock()
	if got != "[80 95 100]" {
		t.Fatalf("alarm levels %s", got)
	}
	// Nothing was dropped to make room, and a retry of a stored sale is
	// still answered.
	rep, _ := l.Verify(context.Background(), VerifyOptions{})
	if !rep.OK() || rep.Count != i-1 {
		t.Fatalf("%d records verified of %d written: %v", rep.Count, i-1, rep.Problem)
	}
	first := order(1)
	first.Order = strings.Repeat("x", 150)
	if _, replay, err := l.Append(context.Background(), first); err != nil || !replay {
		t.Fatalf("replay when full: %v %v", replay, err)
	}
}

func TestRotation(t *testing.T) {
	l := openTest(t, nil)
	first := l.PublicKey()
	appendN(t, l, 2)
	rot, err := l.Rotate(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	r, _ := rot.Decode()
	if r.Type != TypeRotation || r.Kid != first.ID || r.NewKid == first.ID {
		t.Fatalf("rotation record %s", rot.Record)
	}
	if l.PublicKey().ID != r.NewKid {
		t.Fatalf("ledger signs with %s after rotating to %s", l.PublicKey().ID, r.NewKid)
	}
	appendN(t, l, 2)
	// The key file now holds the new key; the old one is kept, retired.
	k, err := LoadKey(l.o.KeyFile)
	if err != nil || k.ID != r.NewKid {
		t.Fatalf("key file: %v %v", k, err)
	}
	if _, err := os.Stat(l.o.KeyFile + "." + first.ID + ".retired"); err != nil {
		t.Fatal(err)
	}
	rep, err := l.Verify(context.Background(), VerifyOptions{First: first.Pub, Current: k.Pub})
	if err != nil || !rep.OK() || rep.Count != 5 {
		t.Fatalf("%v %+v %v", err, rep, rep.Problem)
	}
	// An old-key signature after the rotation is refused.
	var buf bytes.Buffer
	if _, err := l.Export(context.Background(), &buf, 0, 0); err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(strings.TrimSpace(buf.String()), "\n")
	old, _ := LoadKey(l.o.KeyFile + "." + first.ID + ".retired")
	rec4, _ := ParseLine([]byte(lines[3]))
	d, _ := rec4.Decode()
	d.Kid = first.ID
	forged, _ := signRecord(d, old.Priv)
	lines[3] = lineOf(t, forged)
	rep, _ = VerifyExport(strings.NewReader(strings.Join(lines, "")), first.Pub, nil)
	if rep.Problem == nil || rep.Problem.Seq != 4 || rep.Problem.Reason != UnknownKey {
		t.Fatalf("problem %v", rep.Problem)
	}
}

func TestRotationFinishedAfterCrash(t *testing.T) {
	l := openTest(t, nil)
	appendN(t, l, 1)
	first := l.PublicKey()
	// Simulate a crash after the rotation record committed but before the
	// key files were swapped.
	next, _ := GenerateKey()
	if err := WriteKey(l.o.KeyFile+".next", next); err != nil {
		t.Fatal(err)
	}
	l.keyMu.Lock()
	l.key = &Key{Priv: l.key.Priv, Pub: l.key.Pub, ID: l.key.ID}
	l.keyMu.Unlock()
	if _, _, err := l.submit(context.Background(), &appendReq{ctx: context.Background(), rotate: next}); err != nil {
		t.Fatal(err)
	}
	l.Close()
	// Put the old key back where a crash would have left it.
	if err := os.Rename(l.o.KeyFile+"."+first.ID+".retired", l.o.KeyFile); err != nil {
		t.Fatal(err)
	}
	if err := WriteKey(l.o.KeyFile+".next", next); err != nil {
		t.Fatal(err)
	}
	l2, err := Open(l.o)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if l2.PublicKey().ID != next.ID {
		t.Fatalf("reopened with %s, want %s", l2.PublicKey().ID, next.ID)
	}
	if _, _, err := l2.Append(context.Background(), order(9)); err != nil {
		t.Fatal(err)
	}
	if rep, _ := l2.Verify(context.Background(), VerifyOptions{First: first.Pub, Current: next.Pub}); !rep.OK() {
		t.Fatal(rep.Problem)
	}
}

func TestWrongKeyFileRefused(t *testing.T) {
	l := openTest(t, nil)
	appendN(t, l, 1)
	l.Close()
	other, _ := GenerateKey()
	if err := WriteKey(l.o.KeyFile, other); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(l.o); !errors.Is(err, ErrKeyMismatch) {
		t.Fatalf("open with a swapped key: %v", err)
	}
}

func TestBoxChangeRefused(t *testing.T) {
	l := openTest(t, nil)
	l.Close()
	o := l.o
	o.Box = "box2"
	if _, err := Open(o); err == nil || !strings.Contains(err.Error(), "belongs to box") {
		t.Fatalf("%v", err)
	}
}

func testCloudKey(t *testing.T) ed25519.PrivateKey {
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

func ack(t *testing.T, l *Ledger, s Signed, turnover int64, cloud ed25519.PrivateKey) SignedCheckpoint {
	t.Helper()
	sc, err := SignCheckpoint(Checkpoint{Box: "box1", AckedThrough: s.Seq, Head: s.Hash, Turnover: turnover, TS: t0.Format(time.RFC3339)}, cloud)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := sc.Open(cloud.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Ack(context.Background(), cp, sc); err != nil {
		t.Fatal(err)
	}
	return sc
}

func TestAckAndPrune(t *testing.T) {
	l := openTest(t, nil)
	ss := appendN(t, l, 10)
	cloud := testCloudKey(t)
	ack(t, l.Ledger, ss[6], 7*4500, cloud)
	b, err := l.Backlog(context.Background())
	if err != nil || b.Count != 3 || b.AckedThrough != 7 || !b.Oldest.Equal(t0.Add(7*time.Second)) {
		t.Fatalf("backlog %+v %v", b, err)
	}
	// A checkpoint with a different hash is a fork: refused, not stored.
	bad, _ := SignCheckpoint(Checkpoint{Box: "box1", AckedThrough: 9, Head: ss[7].Hash}, cloud)
	cp, _ := bad.Open(nil)
	if err := l.Ack(context.Background(), cp, bad); !errors.Is(err, ErrCheckpoint) {
		t.Fatalf("forked checkpoint: %v", err)
	}
	l.clk.Advance(48 * time.Hour)
	n, err := l.Prune(context.Background(), l.clk.Now().Add(-24*time.Hour))
	if err != nil || n != 7 {
		t.Fatalf("pruned %d: %v", n, err)
	}
	rep, err := l.Verify(context.Background(), VerifyOptions{Current: l.PublicKey().Pub})
	if err != nil || !rep.OK() || rep.First != 8 || rep.Last != 10 || rep.Turnover != 45000 {
		t.Fatalf("after prune: %v %+v %v", err, rep, rep.Problem)
	}
	// Unsynced records are never pruned, whatever their age.
	ack(t, l.Ledger, ss[9], 10*4500, cloud)
	n, _ = l.Prune(context.Background(), l.clk.Now())
	if n != 2 {
		t.Fatalf("second prune removed %d, want 2 (the head record stays)", n)
	}
	if h, _ := l.Head(context.Background()); h.Seq != 10 {
		t.Fatalf("head %d", h.Seq)
	}
	s, _, err := l.Append(context.Background(), order(11))
	if err != nil || s.Seq != 11 {
		t.Fatal(err)
	}
	if rep, _ := l.Verify(context.Background(), VerifyOptions{}); !rep.OK() || rep.First != 10 {
		t.Fatalf("%+v %v", rep, rep.Problem)
	}
}

func lineOf(t *testing.T, s Signed) string {
	var b bytes.Buffer
	if err := WriteLine(&b, s); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func rawDB(t *testing.T, path string) *sql.DB {
	db, err := sqlitex.Open(path, sqlitex.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// With the label outbox on, every sale's label request commits with the
// sale; it stays until LabelDone, and pruning keeps its record.
func TestLabelOutbox(t *testing.T) {
	l := openTest(t, func(o *Options) { o.LabelOutbox = true })
	ss := appendN(t, l, 5)
	if _, err := l.Rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	ss = append(ss, appendN(t, l, 1)...)
	ctx := context.Background()
	pend, err := l.PendingLabels(ctx, 3)
	if err != nil || len(pend) != 3 || pend[0].Seq != 1 || pend[2].Seq != 3 {
		t.Fatalf("pending %v %v", pend, err)
	}
	if n, _ := l.LabelBacklog(ctx); n != 6 {
		t.Fatalf("backlog %d, want 6 (the rotation has no label)", n)
	}
	for _, s := range ss[:2] {
		if err := l.LabelDone(ctx, s.Seq); err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := l.LabelBacklog(ctx); n != 4 {
		t.Fatalf("backlog %d", n)
	}
	// A replay writes no second label request.
	if _, replay, err := l.Append(ctx, order(1)); err != nil || !replay {
		t.Fatal(err)
	}
	if n, _ := l.LabelBacklog(ctx); n != 4 {
		t.Fatalf("backlog %d after a replay", n)
	}
	// Synced and old, but seq 3's label is not printed: 1 and 2 go.
	cloud := testCloudKey(t)
	ack(t, l.Ledger, ss[5], 6*4500, cloud)
	l.clk.Advance(48 * time.Hour)
	n, err := l.Prune(ctx, l.clk.Now())
	if err != nil || n != 2 {
		t.Fatalf("pruned %d: %v", n, err)
	}
	if pend, _ := l.PendingLabels(ctx, 10); len(pend) != 4 || pend[0].Seq != 3 {
		t.Fatalf("pending after prune %v", pend)
	}
}
