package ingest

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"fieldkit/sync/receipts"
)

// Hand-overs sync like sales: the cloud verifies and stores a ledger of
// sales and their hand-over records, with the turnover the sales make,
// on both stores.
func TestIngestHandovers(t *testing.T) {
	dir := t.TempDir()
	l, err := receipts.Open(receipts.Options{Path: filepath.Join(dir, "r.db"), KeyFile: filepath.Join(dir, "k"), Box: "box1", BootID: "b",
		Sync: receipts.SyncFunc(func() bool { return true })})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := 1; i <= 4; i++ {
		if _, _, err := l.Append(ctx, receipts.Order{ClientID: fmt.Sprint("c", i), Order: fmt.Sprint("o", i), Items: []receipts.Item{{SKU: "A", Qty: 1, Price: 5}}, Total: 5, Currency: "EUR", Pay: "cash"}); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			if _, err := l.HandOver(ctx, uint64(i+i/2-1), "desk1"); err != nil {
				t.Fatal(err)
			}
		}
	}
	var ss []receipts.Signed
	if err := l.Range(ctx, 0, 0, func(s receipts.Signed) error { ss = append(ss, s); return nil }); err != nil {
		t.Fatal(err)
	}
	pub := l.PublicKey().Pub
	l.Close()
	if len(ss) != 6 {
		t.Fatalf("%d records, want 4 sales and 2 hand-overs", len(ss))
	}
	backends(t, func(t *testing.T, open func(*testing.T) Store) {
		s, alarms := newServer(t, open(t), false)
		tok := enroll(t, s, "box1", pub)
		code, r := postBatch(t, s, ss, post{token: tok})
		if code != 200 || r.AckedThrough != 6 || r.Accepted != 6 {
			t.Fatalf("%d %+v", code, r)
		}
		st, err := s.Box(ctx, "box1")
		if err != nil || st.Seq != 6 || st.Turnover != 20 || st.Head != ss[5].Hash {
			t.Fatalf("%+v %v", st, err)
		}
		rep, err := s.VerifyBox(ctx, "box1")
		if err != nil || !rep.OK() || rep.Count != 6 {
			t.Fatalf("verify from the database: %+v %v", rep, err)
		}
		if a := alarms.get(); len(a) != 0 {
			t.Fatalf("alarms %v", a)
		}
	})
}
