package ingest

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"fieldkit/internal/clock"
	"fieldkit/internal/pgtest"
	"fieldkit/sync/receipts"
)

// cluster is the package's throwaway PostgreSQL, started by TestMain;
// every test gets a database of its own on it.
var cluster *pgtest.Cluster

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(runChild())
	}
	c, err := pgtest.Start(context.Background(), nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ingest tests need PostgreSQL:", err)
		os.Exit(1)
	}
	cluster = c
	code := m.Run()
	c.Stop()
	os.Exit(code)
}

// backends runs f once on each store.
func backends(t *testing.T, f func(t *testing.T, open func(t *testing.T) Store)) {
	t.Run("sqlite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "c.db")
		f(t, func(t *testing.T) Store {
			st, err := OpenSQLite(path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		})
	})
	t.Run("postgres", func(t *testing.T) {
		url := cluster.NewDB(t)
		f(t, func(t *testing.T) Store {
			st, err := OpenPostgres(context.Background(), url)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		})
	})
}

func ledgerRecords(t testing.TB, box string, n int) ([]receipts.Signed, ed25519.PublicKey) {
	dir := t.TempDir()
	l, err := receipts.Open(receipts.Options{Path: filepath.Join(dir, "r.db"), KeyFile: filepath.Join(dir, "k"), Box: box, BootID: "b",
		Sync: receipts.SyncFunc(func() bool { return true })})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var out []receipts.Signed
	for i := 1; i <= n; i++ {
		s, _, err := l.Append(context.Background(), receipts.Order{ClientID: fmt.Sprint("c", i), Order: "o", Items: []receipts.Item{{SKU: "A", Qty: 1, Price: 5}}, Total: 5, Currency: "EUR", Pay: "cash"})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out, l.PublicKey().Pub
}

type post struct {
	key   string // Idempotency-Key; "" derives it
	first ed25519.PublicKey
	token string
	head  uint64
}

func postBatch(t testing.TB, h http.Handler, ss []receipts.Signed, p post) (int, Response) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	for _, s := range ss {
		receipts.WriteLine(zw, s)
	}
	zw.Close()
	req := httptest.NewRequest("POST", "/v1/receipts", &buf)
	req.Header.Set("Content-Encoding", "gzip")
	if p.key == "" {
		r0, _ := ss[0].Decode()
		r1, _ := ss[len(ss)-1].Decode()
		p.key = fmt.Sprintf("%s:%d-%d", r0.Box, r0.Seq, r1.Seq)
	}
	req.Header.Set("Idempotency-Key", p.key)
	if p.first != nil {
		req.Header.Set(HeaderBoxKey, base64.StdEncoding.EncodeToString(p.first))
	}
	if p.token != "" {
		req.Header.Set("Authorization", "Bearer "+p.token)
	}
	if p.head > 0 {
		req.Header.Set(HeaderBoxHead, fmt.Sprint(p.head))
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	var r Response
	if err := json.Unmarshal(w.Body.Bytes(), &r); err != nil {
		t.Fatalf("answer %d is not JSON: %q", w.Code, w.Body.String())
	}
	return w.Code, r
}

type alarmLog struct {
	mu    sync.Mutex
	kinds []string
}

func (a *alarmLog) add(box, kind, msg string) {
	a.mu.Lock()
	a.kinds = append(a.kinds, kind)
	a.mu.Unlock()
}

func (a *alarmLog) get() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.kinds...)
}

func newServer(t *testing.T, st Store, tofu bool) (*Server, *alarmLog) {
	_, key, _ := ed25519.GenerateKey(nil)
	al := &alarmLog{}
	s, err := Open(Options{Store: st, Key: key, TrustOnFirstUse: tofu, OnAlarm: al.add, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, al
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func enroll(t *testing.T, s *Server, box string, pub ed25519.PublicKey) string {
	tok, err := s.Enroll(context.Background(), box, "venue-"+box, pub)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestIngest(t *testing.T) {
	ss, pub := ledgerRecords(t, "box1", 10)
	backends(t, func(t *testing.T, open func(*testing.T) Store) {
		s, alarms := newServer(t, open(t), false)
		tok := enroll(t, s, "box1", pub)
		p := post{token: tok}

		code, r := postBatch(t, s, ss[:4], p)
		if code != 200 || r.AckedThrough != 4 || r.Accepted != 4 {
			t.Fatalf("%d %+v", code, r)
		}
		cp, err := r.Checkpoint.Open(s.PublicKey())
		if err != nil || cp.AckedThrough != 4 || cp.Head != ss[3].Hash || cp.Turnover != 20 {
			t.Fatalf("checkpoint %+v %v", cp, err)
		}
		// A resent batch overlapping the stored records is deduped.
		code, r = postBatch(t, s, ss[2:7], p)
		if code != 200 || r.AckedThrough != 7 || r.Accepted != 3 || r.Duplicates != 2 {
			t.Fatalf("overlap: %d %+v", code, r)
		}
		// The very same batch again: all duplicates, the same answer.
		code, r = postBatch(t, s, ss[2:7], p)
		if code != 200 || r.AckedThrough != 7 || r.Accepted != 0 || r.Duplicates != 5 {
			t.Fatalf("replay: %d %+v", code, r)
		}
		// A skip ahead is a 409 naming the seq the cloud needs.
		code, r = postBatch(t, s, ss[8:], p)
		if code != 409 || r.ExpectedSeq != 8 || r.Fork {
			t.Fatalf("skip: %d %+v", code, r)
		}
		// A bad signature on the next record is refused and alarmed as
		// invalid, not as a fork.
		bad := ss[7]
		bad.Record = strings.Replace(bad.Record, `"pay":"cash"`, `"pay":"card"`, 1)
		code, r = postBatch(t, s, []receipts.Signed{bad}, p)
		if code != 422 || !strings.Contains(r.Error, "record 8: bad signature") {
			t.Fatalf("bad sig: %d %+v", code, r)
		}
		code, r = postBatch(t, s, ss[7:], p)
		if code != 200 || r.AckedThrough != 10 {
			t.Fatalf("%d %+v", code, r)
		}
		st, err := s.Box(context.Background(), "box1")
		if err != nil || st.Seq != 10 || st.Count != 10 || st.Turnover != 50 || st.Head != ss[9].Hash {
			t.Fatalf("%+v %v", st, err)
		}
		if got := alarms.get(); len(got) != 1 || got[0] != AlarmInvalid {
			t.Fatalf("alarms %v", got)
		}
		rep, err := s.VerifyBox(context.Background(), "box1")
		if err != nil || !rep.OK() || rep.Count != 10 || rep.Head != ss[9].Hash {
			t.Fatalf("verify from the database: %+v %v", rep, err)
		}
	})
}

// forge signs body as record seq of a chain with priv, returning a record
// that differs from the stored one at the same seq.
func forgeSigned(t *testing.T, orig receipts.Signed, priv ed25519.PrivateKey) receipts.Signed {
	body := strings.Replace(orig.Record, `"pay":"cash"`, `"pay":"card"`, 1)
	if body == orig.Record {
		t.Fatal("nothing to change")
	}
	sig := ed25519.Sign(priv, receipts.SignedMessage([]byte(body)))
	return receipts.Signed{Seq: orig.Seq, Record: body, Sig: base64.StdEncoding.EncodeToString(sig), Hash: receipts.ChainHash([]byte(body), sig)}
}

func TestForkNeedsAValidSignature(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "k")
	l, err := receipts.Open(receipts.Options{Path: filepath.Join(dir, "r.db"), KeyFile: keyFile, Box: "box1", BootID: "b",
		Sync: receipts.SyncFunc(func() bool { return true })})
	if err != nil {
		t.Fatal(err)
	}
	var ss []receipts.Signed
	for i := 1; i <= 4; i++ {
		s, _, err := l.Append(context.Background(), receipts.Order{ClientID: fmt.Sprint("c", i), Order: "o", Items: []receipts.Item{{SKU: "A", Qty: 1, Price: 5}}, Total: 5, Currency: "EUR", Pay: "cash"})
		if err != nil {
			t.Fatal(err)
		}
		ss = append(ss, s)
	}
	pub := l.PublicKey().Pub
	l.Close()
	k, err := receipts.LoadKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	_, stranger, _ := ed25519.GenerateKey(nil)

	backends(t, func(t *testing.T, open func(*testing.T) Store) {
		s, alarms := newServer(t, open(t), false)
		p := post{token: enroll(t, s, "box1", pub)}
		if code, r := postBatch(t, s, ss, p); code != 200 || r.AckedThrough != 4 {
			t.Fatalf("%d %+v", code, r)
		}
		// All-zero signature, another record at a stored seq: refused as
		// invalid, no tamper alarm.
		zero := ss[1]
		zero.Record = strings.Replace(zero.Record, `"pay":"cash"`, `"pay":"card"`, 1)
		zero.Sig = base64.StdEncoding.EncodeToString(make([]byte, 64))
		code, r := postBatch(t, s, []receipts.Signed{zero}, p)
		if code != 422 || r.Fork || !strings.Contains(r.Error, "no evidence of a fork") {
			t.Fatalf("zero signature: %d %+v", code, r)
		}
		// Signed, but by a key that is not the box's: the same.
		code, r = postBatch(t, s, []receipts.Signed{forgeSigned(t, ss[1], stranger)}, p)
		if code != 422 || r.Fork {
			t.Fatalf("stranger's signature: %d %+v", code, r)
		}
		if got := alarms.get(); len(got) != 2 || got[0] != AlarmInvalid || got[1] != AlarmInvalid {
			t.Fatalf("alarms after unsigned claims: %v", got)
		}
		// Signed by the box's own key: a real fork.
		code, r = postBatch(t, s, []receipts.Signed{forgeSigned(t, ss[1], k.Priv)}, p)
		if code != 409 || !r.Fork || r.ExpectedSeq != 5 {
			t.Fatalf("fork: %d %+v", code, r)
		}
		if got := alarms.get(); len(got) != 3 || got[2] != AlarmFork {
			t.Fatalf("alarms: %v", got)
		}
		boxes, err := s.Store().Boxes(context.Background())
		if err != nil || len(boxes) != 1 || boxes[0].Forks != 1 || boxes[0].Invalid != 2 {
			t.Fatalf("%+v %v", boxes, err)
		}
		// The stored chain is untouched.
		if rep, err := s.VerifyBox(context.Background(), "box1"); err != nil || !rep.OK() || rep.Count != 4 {
			t.Fatalf("%+v %v", rep, err)
		}
	})
}

func TestEnrollment(t *testing.T) {
	ss, pub := ledgerRecords(t, "box1", 3)
	other, _, _ := ed25519.GenerateKey(nil)
	backends(t, func(t *testing.T, open func(*testing.T) Store) {
		st := open(t)
		s, _ := newServer(t, st, false)
		// Not enrolled: refused before the body is read.
		if code, r := postBatch(t, s, ss, post{first: pub}); code != 403 || !strings.Contains(r.Error, "not enrolled") {
			t.Fatalf("unenrolled: %d %+v", code, r)
		}
		tok := enroll(t, s, "box1", pub)
		if code, _ := postBatch(t, s, ss, post{}); code != 401 {
			t.Fatalf("no token: %d", code)
		}
		if code, _ := postBatch(t, s, ss, post{token: tok + "x"}); code != 401 {
			t.Fatalf("wrong token: %d", code)
		}
		// Another box's token does not open this box.
		tok2 := enroll(t, s, "box2", nil)
		if code, _ := postBatch(t, s, ss, post{token: tok2}); code != 401 {
			t.Fatalf("another box's token: %d", code)
		}
		// The enrolled key wins over whatever key the batch claims.
		if code, r := postBatch(t, s, ss, post{token: tok, first: other}); code != 200 || r.AckedThrough != 3 {
			t.Fatalf("%d %+v", code, r)
		}
		// Re-enrolling with another key would re-anchor the chain.
		if _, err := s.Enroll(context.Background(), "box1", "", other); err == nil || !strings.Contains(err.Error(), "another key") {
			t.Fatalf("re-enroll with another key: %v", err)
		}
		// Re-enrolling with the same key replaces the token.
		tok3 := enroll(t, s, "box1", pub)
		if code, _ := postBatch(t, s, ss, post{token: tok}); code != 401 {
			t.Fatalf("old token after re-enrollment: %d", code)
		}
		if code, r := postBatch(t, s, ss, post{token: tok3}); code != 200 || r.Duplicates != 3 {
			t.Fatalf("%d %+v", code, r)
		}
	})
}

func TestEnrollByToken(t *testing.T) {
	ss, pub := ledgerRecords(t, "box1", 3)
	other, _, _ := ed25519.GenerateKey(nil)
	backends(t, func(t *testing.T, open func(*testing.T) Store) {
		s, _ := newServer(t, open(t), false)
		tok := enroll(t, s, "box1", nil)
		if code, r := postBatch(t, s, ss, post{token: tok}); code != 400 || !strings.Contains(r.Error, HeaderBoxKey) {
			t.Fatalf("no key: %d %+v", code, r)
		}
		// A wrong first key stores nothing and pins nothing.
		if code, r := postBatch(t, s, ss, post{token: tok, first: other}); code != 422 || !strings.Contains(r.Error, "unknown key") {
			t.Fatalf("wrong key: %d %+v", code, r)
		}
		if code, r := postBatch(t, s, ss[:2], post{token: tok, first: pub}); code != 200 || r.AckedThrough != 2 {
			t.Fatalf("%d %+v", code, r)
		}
		en, err := s.Store().Enrollment(context.Background(), "box1")
		if err != nil || !bytes.Equal(en.FirstKey, pub) {
			t.Fatalf("pinned %v %v", en, err)
		}
		if _, err := s.Enroll(context.Background(), "box1", "", other); err == nil {
			t.Fatal("re-enrolled a started chain with another key")
		}
	})
}

func TestTrustOnFirstUse(t *testing.T) {
	ss, pub := ledgerRecords(t, "box1", 3)
	other, _, _ := ed25519.GenerateKey(nil)
	backends(t, func(t *testing.T, open func(*testing.T) Store) {
		s, _ := newServer(t, open(t), true)
		if code, r := postBatch(t, s, ss, post{key: "box1:1-2"}); code != 400 || !strings.Contains(r.Error, "Idempotency-Key") {
			t.Fatalf("%d %+v", code, r)
		}
		if code, r := postBatch(t, s, ss, post{}); code != 400 || !strings.Contains(r.Error, HeaderBoxKey) {
			t.Fatalf("no key: %d %+v", code, r)
		}
		if code, r := postBatch(t, s, ss, post{first: other}); code != 422 || !strings.Contains(r.Error, "unknown key") {
			t.Fatalf("wrong key: %d %+v", code, r)
		}
		if code, r := postBatch(t, s, ss[1:], post{first: pub}); code != 409 || r.ExpectedSeq != 1 {
			t.Fatalf("new box from seq 2: %d %+v", code, r)
		}
		if code, r := postBatch(t, s, ss, post{first: pub}); code != 200 || r.AckedThrough != 3 {
			t.Fatalf("%d %+v", code, r)
		}
		w := httptest.NewRecorder()
		req := httptest.NewRequest("POST", "/", strings.NewReader("not gzip"))
		req.Header.Set("Idempotency-Key", "box1:4-4")
		req.Header.Set("Content-Encoding", "gzip")
		s.ServeHTTP(w, req)
		if w.Code != 400 {
			t.Fatal(w.Code)
		}
	})
}

// Two ingest instances on one database receive the same box's batches at
// once, overlapping and out of order, as retries landing on the other
// instance would: every record is stored once, no gap, the chain intact.
func TestInstancesShareABox(t *testing.T) {
	const n = 600
	ss, pub := ledgerRecords(t, "box1", n)
	backends(t, func(t *testing.T, open func(*testing.T) Store) {
		a, _ := newServer(t, open(t), false)
		b, _ := newServer(t, open(t), false)
		tok := enroll(t, a, "box1", pub)
		var wg sync.WaitGroup
		var busy atomic.Int64
		errs := make(chan string, 100)
		for w := 0; w < 8; w++ {
			srv := a
			if w%2 == 1 {
				srv = b
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Each sender walks the chain in batches of its own size,
				// resending from where the cloud says.
				size := 37 + 23*w
				next := uint64(1)
				for next <= n {
					hi := min(next-1+uint64(size), n)
					code, r := postBatch(t, srv, ss[next-1:hi], post{token: tok})
					switch {
					case code == 200:
						next = max(next, r.AckedThrough+1)
					case code == 409 && !r.Fork && r.ExpectedSeq > 0:
						next = r.ExpectedSeq
					case code == 503 && busy.Add(1) < 1000:
						// SQLite's write lock stayed busy past its
						// timeout: retried, as the uplink does.
					default:
						errs <- fmt.Sprintf("sender %d: %d %+v", w, code, r)
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Error(e)
		}
		seqs, err := a.Seqs(context.Background(), "box1")
		if err != nil || len(seqs) != n {
			t.Fatalf("%d seqs stored, want %d (%v)", len(seqs), n, err)
		}
		for i, q := range seqs {
			if q != uint64(i+1) {
				t.Fatalf("seq %d at position %d", q, i+1)
			}
		}
		rep, err := b.VerifyBox(context.Background(), "box1")
		if err != nil || !rep.OK() || rep.Count != n || rep.Head != ss[n-1].Hash {
			t.Fatalf("%+v %v", rep, err)
		}
	})
}

// Instances starting at once on an empty database migrate it once.
func TestMigrationsConcurrent(t *testing.T) {
	url := cluster.NewDB(t)
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := OpenPostgres(context.Background(), url)
			if err == nil {
				st.Close()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	st, err := OpenPostgres(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var n, v int
	if err := st.(*pgStore).pool.QueryRow(context.Background(), `SELECT count(*), max(version) FROM schema_migrations`).Scan(&n, &v); err != nil {
		t.Fatal(err)
	}
	if n != SchemaVersion() || v != SchemaVersion() {
		t.Fatalf("%d migrations recorded up to %d, want %d", n, v, SchemaVersion())
	}
	var sc string
	if err := st.(*pgStore).pool.QueryRow(context.Background(), `SHOW synchronous_commit`).Scan(&sc); err != nil || sc != "on" {
		t.Fatalf("synchronous_commit %q %v", sc, err)
	}
}

// A file written by the first ingest (schema version 1, no version
// recorded) opens, is migrated, and its records count in the report.
func TestSQLiteMigratesOldFile(t *testing.T) {
	ss, _ := ledgerRecords(t, "box1", 3)
	path := filepath.Join(t.TempDir(), "old.db")
	st, err := OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	db := st.(*sqliteStore).db
	// Wind the file back to the first ingest's schema.
	for _, q := range []string{`DROP TABLE boxes`, `DROP TABLE records`, `DROP TABLE alarms`, `DROP TABLE enrollments`, `PRAGMA user_version=0`, sqliteMigrations[1]} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(q, err)
		}
	}
	for _, s := range ss {
		r, _ := s.Decode()
		if _, err := db.Exec(`INSERT INTO records(box, seq, hash, body, sig, received_ms) VALUES (?, ?, ?, ?, ?, 0)`, "box1", r.Seq, s.Hash, []byte(s.Record), s.Sig); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	st, err = OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rep, err := st.Sales(context.Background(), time.Time{})
	if err != nil || rep.Count != 3 || rep.Total != 15 || len(rep.BySKU) != 1 || rep.BySKU[0].Qty != 3 {
		t.Fatalf("%+v %v", rep, err)
	}
}

func getJSON(t *testing.T, h http.Handler, path, token string, code int, v any) string {
	t.Helper()
	req := httptest.NewRequest("GET", path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != code {
		t.Fatalf("GET %s: %d, want %d: %s", path, w.Code, code, w.Body.String())
	}
	if v != nil {
		if err := json.Unmarshal(w.Body.Bytes(), v); err != nil {
			t.Fatalf("GET %s: %v: %s", path, err, w.Body.String())
		}
	}
	return w.Body.String()
}

func TestOperators(t *testing.T) {
	ss, pub := ledgerRecords(t, "box1", 10)
	backends(t, func(t *testing.T, open func(*testing.T) Store) {
		_, key, _ := ed25519.GenerateKey(nil)
		clk := clockAt("2026-06-01T18:30:00Z")
		s, err := Open(Options{Store: open(t), Key: key, AdminToken: "admintok", Clock: clk, Log: quiet})
		if err != nil {
			t.Fatal(err)
		}
		h := s.Handler()
		tok := enroll(t, s, "box1", pub)
		if _, err := s.Enroll(context.Background(), "box2", "hall B", nil); err != nil {
			t.Fatal(err)
		}
		// The box says its ledger holds 10; 6 arrive.
		if code, r := postBatch(t, h, ss[:6], post{token: tok, head: 10}); code != 200 || r.AckedThrough != 6 {
			t.Fatalf("%d %+v", code, r)
		}
		bad := ss[6]
		bad.Sig = base64.StdEncoding.EncodeToString(make([]byte, 64))
		if code, _ := postBatch(t, h, []receipts.Signed{bad}, post{token: tok, head: 10}); code != 422 {
			t.Fatal(code)
		}
		getJSON(t, h, "/v1/boxes", "", 401, nil)
		getJSON(t, h, "/v1/boxes", "wrong", 401, nil)
		var boxes []BoxStatus
		getJSON(t, h, "/v1/boxes", "admintok", 200, &boxes)
		if len(boxes) != 2 || boxes[0].Box != "box1" || boxes[0].AckedThrough != 6 || boxes[0].Backlog != 4 || boxes[0].Invalid != 1 || boxes[0].Forks != 0 ||
			!boxes[0].LastContact.Equal(clk.Now()) || !boxes[0].Enrolled || boxes[0].Venue != "venue-box1" {
			t.Fatalf("%+v", boxes)
		}
		if boxes[1].Box != "box2" || boxes[1].Venue != "hall B" || boxes[1].AckedThrough != 0 || !boxes[1].LastContact.IsZero() {
			t.Fatalf("%+v", boxes[1])
		}
		var alarms []Alarm
		getJSON(t, h, "/v1/alarms?limit=5", "admintok", 200, &alarms)
		if len(alarms) != 1 || alarms[0].Kind != AlarmInvalid || alarms[0].Box != "box1" {
			t.Fatalf("%+v", alarms)
		}
		getJSON(t, h, "/v1/alarms?limit=0", "admintok", 400, nil)
		var rep FleetReport
		getJSON(t, h, "/v1/report", "admintok", 200, &rep)
		if !rep.Verified || rep.Count != 6 || rep.Total != 30 || len(rep.ByBox) != 1 || rep.ByBox[0].Venue != "venue-box1" ||
			len(rep.BySKU) != 1 || rep.BySKU[0] != (receipts.SKUTotal{SKU: "A", Qty: 6, Total: 30}) ||
			len(rep.ByPay) != 1 || rep.ByPay[0] != (receipts.PayTotal{Pay: "cash", Count: 6, Total: 30}) || len(rep.ByHour) != 1 || rep.ByHour[0].Count != 6 {
			t.Fatalf("%+v", rep)
		}
		var none FleetReport
		getJSON(t, h, "/v1/report?since=2999-01-01T00:00:00Z&verify=0", "admintok", 200, &none)
		if none.Count != 0 || none.Verified {
			t.Fatalf("%+v", none)
		}
		var vr receipts.Report
		getJSON(t, h, "/v1/boxes/box1/verify", "admintok", 200, &vr)
		if vr.Count != 6 || vr.Head != ss[5].Hash {
			t.Fatalf("%+v", vr)
		}
		getJSON(t, h, "/healthz", "", 200, nil)
		m := getJSON(t, h, "/metrics", "", 200, nil)
		for _, want := range []string{
			`fieldkit_ingest_box_acked_seq{box="box1",venue="venue-box1"} 6`,
			`fieldkit_ingest_box_backlog{box="box1",venue="venue-box1"} 4`,
			`fieldkit_ingest_box_alarms{box="box1",kind="invalid",venue="venue-box1"} 1`,
			`fieldkit_ingest_records_total{result="accepted"} 6`,
			`fieldkit_ingest_batches_total{code="422"} 1`,
			`fieldkit_ingest_alarms_raised_total{kind="invalid"} 1`,
			`fieldkit_ingest_store_up 1`,
		} {
			if !strings.Contains(m, want) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
		// A database changed behind the ingest's back fails the check
		// and the report.
		tamper(t, s.Store(), "box1", 3)
		getJSON(t, h, "/v1/boxes/box1/verify", "admintok", 409, &vr)
		if vr.Problem == nil || vr.Problem.Seq != 3 {
			t.Fatalf("%+v", vr)
		}
		getJSON(t, h, "/v1/report", "admintok", 409, nil)
	})
}

func clockAt(ts string) *clock.Fake {
	t, _ := time.Parse(time.RFC3339, ts)
	return clock.NewFake(t)
}

// tamper rewrites a stored sale's payment method in the database.
func tamper(t *testing.T, st Store, box string, seq uint64) {
	q := `UPDATE records SET body = CAST(replace(CAST(body AS TEXT), '"pay":"cash"', '"pay":"card"') AS BLOB) WHERE box=? AND seq=?`
	var err error
	switch st := st.(type) {
	case *sqliteStore:
		_, err = st.db.Exec(q, box, seq)
	case *pgStore:
		_, err = st.pool.Exec(context.Background(), `UPDATE records SET body = convert_to(replace(convert_from(body, 'UTF8'), '"pay":"cash"', '"pay":"card"'), 'UTF8') WHERE box=$1 AND seq=$2`, box, int64(seq))
	}
	if err != nil {
		t.Fatal(err)
	}
}

// FuzzParseBatch: any body parses to records of one box or is refused
// with a 400 naming a line; never a panic.
func FuzzParseBatch(f *testing.F) {
	ss, _ := ledgerRecords(f, "box1", 2)
	var buf bytes.Buffer
	for _, s := range ss {
		receipts.WriteLine(&buf, s)
	}
	f.Add(buf.Bytes())
	f.Add([]byte("\n\r\n"))
	f.Add([]byte(`{"seq":1,"record":"{}","sig":"","hash":""}`))
	f.Add(append(buf.Bytes(), []byte(`{"seq":3,"record":"{\"v\":1,\"box\":\"box2\"}","sig":"AA==","hash":""}`+"\n")...))
	f.Fuzz(func(t *testing.T, raw []byte) {
		b, err := parseBatch(raw, 2)
		if err != nil {
			var he *httpErr
			if !errors.As(err, &he) || he.code != http.StatusBadRequest {
				t.Fatalf("%T %v", err, err)
			}
			return
		}
		if len(b.ss) != len(b.recs) {
			t.Fatal("records and lines differ")
		}
		for _, r := range b.recs {
			if r == nil || r.Box != b.box {
				t.Fatalf("record %+v in a batch of box %q", r, b.box)
			}
		}
	})
}

// The fleet report on either store is the sum of the boxes' own Z
// reports, across an hour boundary and with several items, payments and
// boxes.
func TestReportEqualsBoxReports(t *testing.T) {
	type box struct {
		ss  []receipts.Signed
		pub ed25519.PublicKey
		z   *receipts.ZReport
	}
	var boxes []box
	skus := []string{"TEE", "CAP", "TOTE"}
	pays := []string{"card", "cash", "mobile"}
	for i := 0; i < 3; i++ {
		dir := t.TempDir()
		clk := clockAt("2026-06-01T17:40:00Z")
		l, err := receipts.Open(receipts.Options{Path: filepath.Join(dir, "r.db"), KeyFile: filepath.Join(dir, "k"), Box: fmt.Sprint("box", i), BootID: "b",
			Clock: clk, Sync: receipts.SyncFunc(func() bool { return true }), Log: quiet})
		if err != nil {
			t.Fatal(err)
		}
		var b box
		for j := 0; j < 25; j++ {
			clk.Advance(time.Duration(1+i) * time.Minute)
			q := int64(1 + j%3)
			o := receipts.Order{ClientID: fmt.Sprint("c", j), Order: "o", Items: []receipts.Item{{SKU: skus[(i+j)%3], Qty: q, Price: 700 + int64(i*j)}, {SKU: "BAG", Qty: 1, Price: 20}},
				Total: q*(700+int64(i*j)) + 20, Currency: "EUR", Pay: pays[(i+2*j)%3]}
			s, _, err := l.Append(context.Background(), o)
			if err != nil {
				t.Fatal(err)
			}
			b.ss = append(b.ss, s)
		}
		b.pub = l.PublicKey().Pub
		l.Close()
		r, err := receipts.OpenReader(filepath.Join(dir, "r.db"))
		if err != nil {
			t.Fatal(err)
		}
		if b.z, err = r.Report(context.Background(), time.Time{}, receipts.VerifyOptions{First: b.pub}); err != nil {
			t.Fatal(err)
		}
		r.Close()
		boxes = append(boxes, b)
	}
	backends(t, func(t *testing.T, open func(*testing.T) Store) {
		s, _ := newServer(t, open(t), false)
		var zs []*receipts.ZReport
		var venues []string
		for i, b := range boxes {
			tok := enroll(t, s, fmt.Sprint("box", i), b.pub)
			if code, r := postBatch(t, s, b.ss, post{token: tok}); code != 200 || r.AckedThrough != 25 {
				t.Fatalf("%d %+v", code, r)
			}
			zs, venues = append(zs, b.z), append(venues, fmt.Sprint("venue-box", i))
		}
		got, err := s.Report(context.Background(), time.Time{}, true)
		if err != nil {
			t.Fatal(err)
		}
		if want := SumReports(zs, venues); !reflect.DeepEqual(got, want) {
			t.Fatalf("fleet report\n got %+v\nwant %+v", got, want)
		}
		if len(got.ByHour) != 2 {
			t.Fatalf("the sales span two hours: %+v", got.ByHour)
		}
	})
}
