package queue

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"fieldkit/internal/clock"
)

var lbl = json.RawMessage(`{"elements":[{"text":"A-1"}]}`)

func open(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(path, clock.NewFake(time.Unix(1700000000, 0)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestAddIsIdempotent(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "printer.db"))
	j, created, err := s.Add(ctx, NewJob{ID: "order-7", Printer: "counter", Label: lbl})
	if err != nil || !created || j.State != Queued {
		t.Fatalf("first Add = %+v, %v, %v", j, created, err)
	}
	again, created, err := s.Add(ctx, NewJob{ID: "order-7", Printer: "counter", Label: lbl})
	if err != nil || created || again.ID != j.ID {
		t.Fatalf("second Add = %+v, created=%v, %v; want the same job", again, created, err)
	}
	if n, _ := s.Depth(ctx, "counter"); n != 1 {
		t.Fatalf("depth = %d, want 1", n)
	}
	if _, _, err := s.Add(ctx, NewJob{ID: "order-7", Printer: "back", Label: lbl}); !errors.Is(err, ErrIDReused) {
		t.Fatalf("same id, other printer: %v, want ErrIDReused", err)
	}
	if _, _, err := s.Add(ctx, NewJob{ID: "bad id!", Printer: "counter", Label: lbl}); !errors.Is(err, ErrBadID) {
		t.Fatalf("bad id: %v", err)
	}
	fresh, created, err := s.Add(ctx, NewJob{Printer: "counter", Label: lbl})
	if err != nil || !created || fresh.ID == "" || fresh.ID == j.ID {
		t.Fatalf("Add without id = %+v, %v, %v", fresh, created, err)
	}
}

func TestLifecycle(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "printer.db"))
	for _, id := range []string{"a", "b", "c"} {
		if _, _, err := s.Add(ctx, NewJob{ID: id, Printer: "p", Label: lbl}); err != nil {
			t.Fatal(err)
		}
	}
	next, ok, err := s.Next(ctx, "p")
	if err != nil || !ok || next.ID != "a" {
		t.Fatalf("Next = %v %v %v, want a", next.ID, ok, err)
	}
	if _, ok, _ := s.Next(ctx, "other"); ok {
		t.Fatal("Next found a job for a printer with none")
	}
	j, err := s.Begin(ctx, "a")
	if err != nil || j.State != Printing || j.Attempts != 1 {
		t.Fatalf("Begin = %+v, %v", j, err)
	}
	if _, err := s.Cancel(ctx, "a"); !errors.Is(err, ErrConflict) {
		t.Fatalf("cancel while printing: %v, want ErrConflict", err)
	}
	if _, err := s.Retry(ctx, "a", "port vanished before the first byte"); err != nil {
		t.Fatal(err)
	}
	if j, _ := s.Begin(ctx, "a"); j.Attempts != 2 {
		t.Fatalf("attempts = %d, want 2", j.Attempts)
	}
	if err := s.WriteStarted(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteFinished(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	j, err = s.Done(ctx, "a")
	if err != nil || j.State != Done || j.Printed == nil || !j.WriteStarted || !j.WriteFinished {
		t.Fatalf("Done = %+v, %v", j, err)
	}

	if n, err := s.Park(ctx, "p", "paper out"); err != nil || n != 2 {
		t.Fatalf("Park = %d, %v; want 2", n, err)
	}
	if j, _ := s.Get(ctx, "b"); j.State != Parked || j.Error != "paper out" {
		t.Fatalf("parked job = %+v", j)
	}
	if next, _, _ := s.Next(ctx, "p"); next.ID != "b" {
		t.Fatalf("Next while parked = %s, want b (parked jobs keep their turn)", next.ID)
	}
	if n, _ := s.Unpark(ctx, "p"); n != 2 {
		t.Fatalf("Unpark = %d", n)
	}
	if j, _ := s.Cancel(ctx, "c"); j.State != Cancelled {
		t.Fatalf("cancel = %+v", j)
	}
	if d, _ := s.Depth(ctx, "p"); d != 1 {
		t.Fatalf("depth = %d, want 1 (b)", d)
	}
	list, err := s.List(ctx, "p", 10)
	if err != nil || len(list) != 3 || list[0].ID != "c" {
		t.Fatalf("List = %v, %v", list, err)
	}
	if done, _ := s.List(ctx, "", 10, Done); len(done) != 1 || done[0].ID != "a" {
		t.Fatalf("List done = %v", done)
	}
	if _, err := s.Get(ctx, "zzz"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get missing = %v", err)
	}
}

func TestReprint(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "printer.db"))
	add := func(id string) {
		if _, _, err := s.Add(ctx, NewJob{ID: id, Printer: "p", Label: lbl}); err != nil {
			t.Fatal(err)
		}
	}
	add("done")
	s.Begin(ctx, "done")
	s.Done(ctx, "done")
	cp, err := s.Reprint(ctx, "done", "")
	if err != nil || cp.ID == "done" || cp.ReprintOf != "done" || cp.State != Queued || string(cp.Label) != string(lbl) {
		t.Fatalf("reprint of done = %+v, %v", cp, err)
	}

	add("unsure")
	s.Begin(ctx, "unsure")
	s.WriteStarted(ctx, "unsure")
	s.MarkUncertain(ctx, "unsure", "link broke mid-write")
	j, err := s.Reprint(ctx, "unsure", "")
	if err != nil || j.ID != "unsure" || j.State != Queued || j.Attempts != 0 || j.WriteStarted {
		t.Fatalf("reprint of uncertain = %+v, %v", j, err)
	}
	if _, err := s.Reprint(ctx, "unsure", ""); !errors.Is(err, ErrConflict) {
		t.Fatalf("reprint of queued job = %v, want ErrConflict", err)
	}
}

func TestRecoverTellsSafeFromUncertain(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "printer.db")
	s := open(t, path)
	for _, id := range []string{"not-started", "mid-write", "written"} {
		s.Add(ctx, NewJob{ID: id, Printer: "p", Label: lbl})
		s.Begin(ctx, id)
	}
	s.WriteStarted(ctx, "mid-write")
	s.WriteStarted(ctx, "written")
	s.WriteFinished(ctx, "written")
	s.Add(ctx, NewJob{ID: "waiting", Printer: "p", Label: lbl})
	s.Close()

	s = open(t, path)
	req, unc, err := s.Recover(ctx)
	if err != nil || req != 1 || unc != 2 {
		t.Fatalf("Recover = %d requeued, %d uncertain, %v; want 1, 2", req, unc, err)
	}
	want := map[string]State{"not-started": Queued, "mid-write": Uncertain, "written": Uncertain, "waiting": Queued}
	for id, st := range want {
		if j, _ := s.Get(ctx, id); j.State != st {
			t.Errorf("%s: %s, want %s", id, j.State, st)
		}
	}
}

// The queue keeps what the pickup desk looks for: the order and the
// buyer, or no name at all for a discreet order; a reprint keeps both.
func TestOrderAndBuyer(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "printer.db"))
	j, _, err := s.Add(ctx, NewJob{ID: "A-1042", Printer: "counter", Label: lbl, Order: "A-1042", Buyer: "Mara K."})
	if err != nil || j.Order != "A-1042" || j.Buyer != "Mara K." || j.Discreet {
		t.Fatalf("Add = %+v, %v", j, err)
	}
	d, _, err := s.Add(ctx, NewJob{ID: "A-1043", Printer: "counter", Label: lbl, Order: "A-1043", Buyer: "Not Stored", Discreet: true})
	if err != nil || d.Buyer != "" || !d.Discreet {
		t.Fatalf("discreet Add = %+v, %v; want no buyer name kept", d, err)
	}
	if _, err := s.Begin(ctx, j.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Done(ctx, j.ID); err != nil {
		t.Fatal(err)
	}
	r, err := s.Reprint(ctx, j.ID, "A-1042-r1")
	if err != nil || r.Order != "A-1042" || r.Buyer != "Mara K." || r.ReprintOf != "A-1042" {
		t.Fatalf("Reprint = %+v, %v", r, err)
	}
	b, _ := json.Marshal(d)
	if !json.Valid(b) || !bytes.Contains(b, []byte(`"discreet":true`)) || bytes.Contains(b, []byte(`"buyer"`)) {
		t.Fatalf("discreet job JSON %s", b)
	}
}

// A queue made before orders were kept opens, and keeps its jobs.
func TestOpenMigratesOldQueue(t *testing.T) {
	path := filepath.Join(t.TempDir(), "printer.db")
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE jobs (
	seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, printer TEXT NOT NULL, label TEXT NOT NULL,
	state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, error TEXT NOT NULL DEFAULT '',
	reprint_of TEXT NOT NULL DEFAULT '', write_started INTEGER NOT NULL DEFAULT 0,
	write_finished INTEGER NOT NULL DEFAULT 0, created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL, printed_ms INTEGER);
	INSERT INTO jobs (id, printer, label, state, created_ms, updated_ms) VALUES ('old-1', 'counter', '{}', 'done', 1, 1);`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s := open(t, path)
	j, err := s.Get(context.Background(), "old-1")
	if err != nil || j.State != Done || j.Order != "" {
		t.Fatalf("old job after migration: %+v, %v", j, err)
	}
	if _, _, err := s.Add(context.Background(), NewJob{ID: "A-1", Printer: "counter", Label: lbl, Order: "A-1"}); err != nil {
		t.Fatal(err)
	}
}
