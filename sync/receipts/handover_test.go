package receipts

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// handoverCases: a ledger of sales, discreet sales and their hand-overs,
// valid; hand-overs re-signed to name a later record or no one, which
// both verifiers refuse (the Python one through TestPythonVerifierAgrees).
func handoverCases(t *testing.T) []exportCase {
	l := openTest(t, nil)
	ctx := context.Background()
	appendN(t, l, 3)
	yes := true
	o := order(90)
	o.Discreet = &yes
	if _, _, err := l.Append(ctx, o); err != nil {
		t.Fatal(err)
	}
	for _, seq := range []uint64{2, 4} {
		l.clk.Advance(time.Second)
		if _, err := l.HandOver(ctx, seq, "scanner:desk1"); err != nil {
			t.Fatal(err)
		}
	}
	lines := exportLines(t, l)
	first, priv := l.PublicKey().Pub, l.key.Priv
	if len(lines) != 6 {
		t.Fatalf("%d lines, want 6", len(lines))
	}
	edit := func(f func(r *Record)) string {
		return fixLast(resignChain(t, lines, 4, priv, func(i int, r *Record) {
			if i == 4 {
				f(r)
			}
		}))
	}
	return []exportCase{
		{name: "sales and their hand-overs", first: first, export: fixLast(lines), count: 6},
		{name: "a hand-over of a later record, re-signed", first: first, export: edit(func(r *Record) { r.Sale = 9 }), seq: 5, reason: Malformed},
		{name: "a hand-over of itself, re-signed", first: first, export: edit(func(r *Record) { r.Sale = 5 }), seq: 5, reason: Malformed},
		{name: "a hand-over by no one, re-signed", first: first, export: edit(func(r *Record) { r.By = "" }), seq: 5, reason: Malformed},
		{name: "a hand-over that moves money, re-signed", first: first, export: fixLast(resignChainTurnover(t, lines, priv)), seq: 5, reason: TurnoverMismatch},
	}
}

// resignChainTurnover re-signs record 5 (a hand-over) with its turnover
// raised by one.
func resignChainTurnover(t *testing.T, lines []string, k ed25519.PrivateKey) []string {
	out := append([]string(nil), lines...)
	s := mustParse(t, out[4])
	r, _ := s.Decode()
	r.Turnover++
	ns, err := signRecord(r, k)
	if err != nil {
		t.Fatal(err)
	}
	out[4] = lineOf(t, ns)
	return out[:5]
}

func TestHandOverOnceByEveryCode(t *testing.T) {
	l := openTest(t, nil)
	ctx := context.Background()
	sales := appendN(t, l, 2)
	yes := true
	o := order(50)
	o.Discreet = &yes
	disc, _, err := l.Append(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	dr, _ := disc.Decode()
	if dr.Buyer == nil || dr.Buyer.Token == "" || strings.Contains(disc.Record, "Sam R.") {
		t.Fatalf("discreet sale: %s", disc.Record)
	}
	// The three codes a pickup label carries.
	codes := map[string]uint64{
		fmt.Sprintf("box1:%d:%s", sales[0].Seq, sales[0].Short()): sales[0].Seq, // QR
		"A-0002":       sales[1].Seq, // CODE128
		dr.Buyer.Token: disc.Seq,     // discreet QR
	}
	for code, want := range codes {
		s, err := l.Lookup(ctx, code)
		if err != nil || s.Seq != want {
			t.Fatalf("lookup %q: seq %d, %v; want %d", code, s.Seq, err, want)
		}
		l.clk.Advance(time.Minute)
		h, err := l.HandOver(ctx, s.Seq, "scanner:desk1")
		if err != nil {
			t.Fatalf("hand over %q: %v", code, err)
		}
		hr, _ := h.Decode()
		if hr.Type != TypeHandover || hr.Sale != want || hr.By != "scanner:desk1" || hr.Turnover != 3*4500 {
			t.Fatalf("hand-over record %s", h.Record)
		}
	}
	l.clk.Advance(time.Minute)
	_, err = l.HandOver(ctx, sales[1].Seq, "crew page")
	var ho *HandedOver
	if !errors.As(err, &ho) || ho.By != "scanner:desk1" || ho.Order != "A-0002" || ho.At.IsZero() || StatusOfHandover(err) != 409 {
		t.Fatalf("second hand-over: %v (%+v)", err, ho)
	}
	for _, code := range []string{"box1:1:00000000", "box2:1:" + sales[0].Short(), "NOPE-1", "", "box1:99:" + sales[0].Short(), strings.Repeat("A", 26)} {
		if _, err := l.Lookup(ctx, code); !errors.Is(err, ErrUnknownCode) || StatusOfHandover(err) != 404 {
			t.Fatalf("lookup %q: %v", code, err)
		}
	}
	if _, err := l.HandOver(ctx, 4, "desk"); !errors.Is(err, ErrUnknownCode) {
		t.Fatalf("hand over a hand-over record: %v", err)
	}
	rep, err := l.Verify(ctx, VerifyOptions{})
	if err != nil || !rep.OK() || rep.Count != 6 {
		t.Fatalf("verify: %+v %v", rep, err)
	}
	q, err := l.PickupQueue(ctx, 0)
	if err != nil || len(q) != 3 {
		t.Fatalf("queue %+v %v", q, err)
	}
	if !q[0].Discreet || q[0].Buyer != "" || q[0].HandedOver == nil || q[2].Buyer != "Sam R." {
		t.Fatalf("queue %+v", q)
	}
}

func TestHandOverRaceOneWins(t *testing.T) {
	l := openTest(t, nil)
	ctx := context.Background()
	appendN(t, l, 1)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = l.HandOver(ctx, 1, fmt.Sprintf("desk%d", i))
		}()
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		var ho *HandedOver
		switch {
		case err == nil:
			won++
		case !errors.As(err, &ho):
			t.Fatalf("unexpected %v", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d hand-overs succeeded, want 1: %v", won, errs)
	}
	h, _ := l.Head(ctx)
	if h.Seq != 2 {
		t.Fatalf("head %d, want 2 (one sale, one hand-over)", h.Seq)
	}
}

func TestReportListsPickup(t *testing.T) {
	l := openTest(t, nil)
	ctx := context.Background()
	appendN(t, l, 3)
	if _, err := l.HandOver(ctx, 1, "desk1"); err != nil {
		t.Fatal(err)
	}
	l.clk.Advance(time.Second)
	if _, err := l.HandOver(ctx, 1, "desk2"); err == nil {
		t.Fatal("second hand-over accepted")
	}
	z, err := l.Report(ctx, time.Time{}, VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if z.Count != 3 || z.HandedOver != 1 || len(z.NotCollected) != 2 || z.NotCollected[0].Order != "A-0002" {
		t.Fatalf("report %+v", z)
	}
	if len(z.CollectedTwice) != 1 || z.CollectedTwice[0].By != "desk2" || z.CollectedTwice[0].Order != "A-0001" || z.CollectedTwice[0].Handover != 4 {
		t.Fatalf("collected twice %+v", z.CollectedTwice)
	}
	var b strings.Builder
	z.WriteText(&b)
	for _, want := range []string{"pickup    1 handed over, 2 not collected, 1 refused second scans", "-- not collected\nA-0002               receipt 2\nA-0003               receipt 3\n", "A-0001           receipt 1 by desk2"} {
		if !strings.Contains(b.String(), want) {
			t.Fatalf("report text lacks %q:\n%s", want, b.String())
		}
	}
}

// FuzzLookup: any scanned string is looked up without a panic; what it
// finds is a sale whose label carries that code.
func FuzzLookup(f *testing.F) {
	dir := f.TempDir()
	l, err := Open(Options{Path: filepath.Join(dir, "r.db"), KeyFile: filepath.Join(dir, "r.key"), Box: "box1", BootID: "boot-1",
		Sync: SyncFunc(func() bool { return true }), Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { l.Close() })
	ctx := context.Background()
	var sales []Signed
	for i := 1; i <= 3; i++ {
		s, _, err := l.Append(ctx, order(i))
		if err != nil {
			f.Fatal(err)
		}
		sales = append(sales, s)
	}
	f.Add(fmt.Sprintf("box1:%d:%s", sales[0].Seq, sales[0].Short()))
	f.Add("A-0002")
	f.Add("box1:1:")
	f.Add("::")
	f.Add(strings.Repeat("Z", 26))
	f.Fuzz(func(t *testing.T, code string) {
		s, err := l.Lookup(ctx, code)
		if err != nil {
			return
		}
		r, _ := s.Decode()
		c := strings.TrimSpace(code)
		if r.Type != TypeSale || (c != r.Order && c != fmt.Sprintf("box1:%d:%s", s.Seq, s.Short()) && (r.Buyer == nil || c != r.Buyer.Token)) {
			t.Fatalf("%q found record %d (%s)", code, s.Seq, s.Record)
		}
	})
}
