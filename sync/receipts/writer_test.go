package receipts

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
)

// The writer puts the chain fields in front of the order's tail encoded
// earlier, on the caller's goroutine; the stored bytes must be exactly
// what encodeRecord makes of the decoded record, or the verifier (which
// re-encodes) and the README's description of the bytes would disagree.
func TestSaleEncoding(t *testing.T) {
	yes, no := true, false
	cases := []struct {
		name   string
		mod    func(*Options)
		synced bool
		o      Order
	}{
		{"plain", nil, true, order(1)},
		{"no buyer, unsynced clock", nil, false, Order{ClientID: "c-2", Order: "A-2", Items: []Item{{SKU: "X", Qty: 3, Price: 100}}, Total: 300, Currency: "EUR", Pay: "cash"}},
		{"empty buyer", nil, true, Order{ClientID: "c-3", Order: "A-3", Items: []Item{{SKU: "X", Qty: 1, Price: 1}}, Total: 1, Currency: "EUR", Pay: "card", Buyer: &Buyer{}}},
		{"discreet", nil, true, Order{ClientID: "c-4", Order: "A-4", Items: []Item{{SKU: "X", Qty: 1, Price: 5}}, Total: 5, Currency: "EUR", Pay: "card", Buyer: &Buyer{Name: "Sam"}, Discreet: &yes}},
		{"discreet default, overridden", func(o *Options) { o.DiscreetDefault = true }, true, Order{ClientID: "c-5", Order: "A-5", Items: []Item{{SKU: "X", Qty: 1, Price: 5}}, Total: 5, Currency: "EUR", Pay: "card", Buyer: &Buyer{Email: "a@b.example"}, Discreet: &no}},
		{"escapes", func(o *Options) { o.Box = `box "<1>" & é`; o.BootID = "boot\\<&>" }, true,
			Order{ClientID: "pos1-2", Order: "Ä-<b>&amp;\u2028", Items: []Item{{SKU: "T\"EE<>", Qty: 2, Price: 1250}, {SKU: "ß", Qty: 1, Price: 0}},
				Total: 2500, Currency: "EUR", Pay: "mobile", Buyer: &Buyer{Name: "Zoë <z@x>", Phone: "+49 (0) 30", Email: "z&x@y.example"}}},
		{"zero total", nil, true, Order{ClientID: "c-7", Order: "A-7", Items: []Item{{SKU: "FREE", Qty: 1, Price: 0}}, Total: 0, Currency: "JPY", Pay: "voucher"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := openTest(t, func(o *Options) {
				o.Currency = c.o.Currency
				if c.mod != nil {
					c.mod(o)
				}
			})
			l.synced = c.synced
			s, _, err := l.Append(context.Background(), c.o)
			if err != nil {
				t.Fatal(err)
			}
			r, err := s.Decode()
			if err != nil {
				t.Fatal(err)
			}
			want, err := encodeRecord(r)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal([]byte(s.Record), want) {
				t.Fatalf("stored bytes differ from json.Marshal of the record:\n got %s\nwant %s", s.Record, want)
			}
			if r.ClockSynced != c.synced || r.Box != l.o.Box || r.Boot != l.o.BootID {
				t.Fatalf("record %+v", r)
			}
			if rep, _ := l.Verify(context.Background(), VerifyOptions{}); !rep.OK() {
				t.Fatal(rep.Problem)
			}
		})
	}
}

// Retries of one client id from many goroutines land in consecutive
// batches (one committing while the next is built); all get the one
// record, stored once.
func TestConcurrentRetriesShareOneRecord(t *testing.T) {
	l := openTest(t, nil)
	const ids, workers = 40, 12
	var mu sync.Mutex
	got := map[string]Signed{}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < ids; k++ {
				n := (k*7 + w*3) % ids
				s, _, err := l.Append(context.Background(), order(n))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if prev, ok := got[fmt.Sprint(n)]; ok && prev != s {
					t.Errorf("client %d answered with two different records", n)
				}
				got[fmt.Sprint(n)] = s
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	rep, _ := l.Verify(context.Background(), VerifyOptions{})
	if !rep.OK() || rep.Count != ids {
		t.Fatalf("%d records for %d client ids: %v", rep.Count, ids, rep.Problem)
	}
	for n, s := range got {
		stored, err := l.Get(context.Background(), s.Seq)
		if err != nil || stored != s {
			t.Fatalf("client %s answered seq %d, stored %v %v", n, s.Seq, stored.Seq, err)
		}
	}
}

// A commit that fails answers its own callers with the error; the batch
// built on top of it is thrown away and built again from the head row, so
// nothing that was acknowledged is missing and the chain has no gap.
func TestFailedCommitRebuildsNextBatch(t *testing.T) {
	l := openTest(t, nil)
	if _, err := l.db.Exec(`CREATE TRIGGER boom BEFORE INSERT ON records WHEN NEW.total = 666 BEGIN SELECT RAISE(ABORT, 'injected failure'); END`); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	acked := map[uint64]Signed{}
	failed := 0
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < 40; k++ {
				o := order(w*1000 + k)
				if k%9 == 4 {
					o.Items = []Item{{SKU: "BAD", Qty: 1, Price: 666}}
					o.Total = 666
				}
				s, _, err := l.Append(context.Background(), o)
				mu.Lock()
				switch {
				case err == nil && o.Total == 666:
					t.Errorf("%s: the failing insert was acknowledged", o.ClientID)
				case err == nil:
					acked[s.Seq] = s
				case strings.Contains(err.Error(), "injected failure"):
					// the bad order, or a good one in its transaction
					failed++
				default:
					t.Errorf("%s: %v", o.ClientID, err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if failed == 0 {
		t.Fatal("no append failed; the trigger did not fire")
	}
	rep, _ := l.Verify(context.Background(), VerifyOptions{})
	if !rep.OK() {
		t.Fatal(rep.Problem)
	}
	if int(rep.Count) != len(acked) {
		t.Fatalf("%d records stored, %d acknowledged", rep.Count, len(acked))
	}
	for seq, s := range acked {
		stored, err := l.Get(context.Background(), seq)
		if err != nil || stored != s {
			t.Fatalf("acknowledged seq %d: stored %v, %v", seq, stored.Seq, err)
		}
	}
}

// Another process appending to the same ledger moves the head row under
// the writer's in-memory head: the writer notices in its transaction and
// rebuilds the batch instead of writing a fork.
func TestHeadMovedByAnotherWriter(t *testing.T) {
	l := openTest(t, nil)
	other, err := Open(l.o)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	var wg sync.WaitGroup
	var mu sync.Mutex
	acked := map[uint64]string{}
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			led := l.Ledger
			if w%2 == 1 {
				led = other
			}
			for k := 0; k < 25; k++ {
				s, _, err := led.Append(context.Background(), order(w*100+k))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if c, dup := acked[s.Seq]; dup {
					t.Errorf("seq %d acknowledged twice (%s)", s.Seq, c)
				}
				acked[s.Seq] = s.Hash
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	rep, _ := l.Verify(context.Background(), VerifyOptions{})
	if !rep.OK() || rep.Count != 200 || len(acked) != 200 {
		t.Fatalf("%d stored, %d acknowledged, want 200: %v", rep.Count, len(acked), rep.Problem)
	}
}
