package receipts_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fieldkit/internal/clock"
	"fieldkit/internal/sqlitex"
	"fieldkit/sync/receipts"
	"fieldkit/sync/receiptscli"
)

var trustT0 = time.Date(2025, 6, 1, 18, 0, 0, 0, time.UTC)

// trustLedger makes a ledger where the CLI finds it, with n sales.
func trustLedger(t *testing.T, n int) (env receiptscli.Env, o receipts.Options, clk *clock.Fake) {
	t.Helper()
	dir := t.TempDir()
	env = receiptscli.Env{Box: "box1", DataDir: dir}
	cfg := env.Config.WithDefaults(dir)
	clk = clock.NewFake(trustT0)
	o = receipts.Options{Path: cfg.DB, KeyFile: cfg.KeyFile, Box: "box1", BootID: "b", Clock: clk,
		Sync: receipts.SyncFunc(func() bool { return true })}
	l, err := receipts.Open(o)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i := 1; i <= n; i++ {
		sale(t, l, i)
		clk.Advance(time.Second)
	}
	return env, o, clk
}

func sale(t *testing.T, l *receipts.Ledger, i int) receipts.Signed {
	t.Helper()
	s, _, err := l.Append(context.Background(), receipts.Order{ClientID: fmt.Sprint("c", i), Order: fmt.Sprint("A-", i),
		Items: []receipts.Item{{SKU: "TEE", Qty: 1, Price: 2500}}, Total: 2500, Currency: "EUR", Pay: "card"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func runCLI(t *testing.T, env receiptscli.Env, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := receiptscli.RunCLI(context.Background(), args, &out, &out, env)
	return out.String(), err
}

func writePubPEM(t *testing.T, dir string, k *receipts.Key) string {
	t.Helper()
	p := filepath.Join(dir, k.ID+".pem")
	if err := os.WriteFile(p, receipts.PublicPEM(k.Pub), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Someone who can write the database but holds no box key adds an anchor
// row naming a key of their own and re-signs every record with it. The
// ledger is self-consistent, but the key it names was never announced by
// the trusted key: verify --db --pubkey fails and names that key, and so
// does the report.
func TestForgedAnchorRefused(t *testing.T) {
	env, o, _ := trustLedger(t, 5)
	real, err := receipts.LoadKey(o.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	pub := writePubPEM(t, env.DataDir, real)
	if out, err := runCLI(t, env, "verify", "--pubkey", pub); err != nil {
		t.Fatalf("untouched ledger: %v %s", err, out)
	}
	thief, _ := receipts.GenerateKey()
	db, err := sqlitex.Open(o.Path, sqlitex.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT seq, body, sig FROM records ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	var recs []*receipts.Record
	for rows.Next() {
		var seq uint64
		var body, sig []byte
		if err := rows.Scan(&seq, &body, &sig); err != nil {
			t.Fatal(err)
		}
		r, err := (receipts.Signed{Seq: seq, Record: string(body)}).Decode()
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	rows.Close()
	// The anchor says: the chain resumes at seq 0 under the thief's key,
	// from the genesis hash of that key.
	prev := receipts.Genesis("box1", thief.ID)
	keys, _ := json.Marshal(map[string]string{thief.ID: base64.StdEncoding.EncodeToString(thief.Pub)})
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.Exec(q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec(`INSERT INTO anchor(id, seq, hash, turnover, kid, keys, ts) VALUES (1, 0, ?, 0, ?, ?, ?)`, prev, thief.ID, string(keys), trustT0.Format(time.RFC3339Nano))
	for _, r := range recs {
		r.Kid, r.Prev = thief.ID, prev
		if r.Seq == 3 {
			r.Items[0].Price, r.Total = 9900, 9900 // the sale the thief wants to hide
		}
		r.Turnover = 0
		s, err := receipts.SignRecordForTest(r, thief.Priv)
		if err != nil {
			t.Fatal(err)
		}
		sig, _ := s.RawSig()
		exec(`UPDATE records SET body=?, sig=?, hash=? WHERE seq=?`, []byte(s.Record), sig, s.Hash, r.Seq)
		prev = s.Hash
	}
	// Turnover fixed up afterwards would need another re-sign; the thief
	// sets it to what the re-signed chain adds up to.
	var turnover int64
	prev = receipts.Genesis("box1", thief.ID)
	for _, r := range recs {
		turnover += r.Total
		r.Turnover, r.Prev = turnover, prev
		s, _ := receipts.SignRecordForTest(r, thief.Priv)
		sig, _ := s.RawSig()
		exec(`UPDATE records SET body=?, sig=?, hash=? WHERE seq=?`, []byte(s.Record), sig, s.Hash, r.Seq)
		prev = s.Hash
	}
	exec(`UPDATE head SET hash=?, turnover=?, kid=?, keys=?`, prev, turnover, thief.ID, string(keys))
	exec(`UPDATE meta SET v=? WHERE k='first_kid'`, thief.ID)
	db.Close()

	// Without a trust root the forgery is self-consistent: that is all
	// the ledger's own record can prove.
	if out, err := runCLI(t, env, "verify", "--db", o.Path); err != nil {
		t.Logf("without --pubkey: %v %s", err, out)
	}
	out, err := runCLI(t, env, "verify", "--db", o.Path, "--pubkey", pub)
	if !errors.Is(err, receiptscli.ErrBad) || !strings.Contains(out, "unknown key") || !strings.Contains(out, thief.ID) {
		t.Fatalf("forged anchor: verify --pubkey said %v\n%s", err, out)
	}
	t.Logf("verify: %s", strings.TrimSpace(out))
	out, err = runCLI(t, env, "report", "--db", o.Path, "--pubkey", pub)
	if err == nil || !strings.Contains(err.Error(), thief.ID) {
		t.Fatalf("report of a forged ledger: %v\n%s", err, out)
	}
}

// After a prune that drops key rotations, the kept rotation records carry
// the trust from the first key to the key signing now; a rotation forged
// into that history, or an anchor that skips it, is refused.
func TestRotationChainAfterPrune(t *testing.T) {
	env, o, clk := trustLedger(t, 0)
	first, _ := receipts.LoadKey(o.KeyFile)
	pub := writePubPEM(t, env.DataDir, first)
	l, err := receipts.Open(o)
	if err != nil {
		t.Fatal(err)
	}
	var last receipts.Signed
	for i := 1; i <= 9; i++ {
		if i == 3 || i == 6 {
			if _, err := l.Rotate(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		last = sale(t, l, i)
		clk.Advance(time.Second)
	}
	h, _ := l.Head(context.Background())
	ck, _ := receipts.GenerateKey()
	cloud := ck.Priv
	sc, err := receipts.SignCheckpoint(receipts.Checkpoint{Box: "box1", AckedThrough: last.Seq, Head: last.Hash, Turnover: h.Turnover}, cloud)
	if err != nil {
		t.Fatal(err)
	}
	cp, _ := sc.Open(nil)
	if err := l.Ack(context.Background(), cp, sc); err != nil {
		t.Fatal(err)
	}
	clk.Advance(24 * time.Hour)
	n, err := l.Prune(context.Background(), clk.Now())
	if err != nil || n != int(last.Seq)-1 {
		t.Fatalf("pruned %d: %v", n, err)
	}
	l.Close()
	out, err := runCLI(t, env, "verify", "--db", o.Path, "--pubkey", pub)
	if err != nil || !strings.Contains(out, "ok: box box1, 1 records") {
		t.Fatalf("pruned ledger with two rotations: %v %s", err, out)
	}
	// The second key's owner cannot be trusted from the first key alone if
	// the rotation announcing it is gone from the history.
	db, err := sqlitex.Open(o.Path, sqlitex.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var body []byte
	if err := db.QueryRow(`SELECT body FROM key_history ORDER BY seq LIMIT 1`).Scan(&body); err != nil {
		t.Fatal(err)
	}
	// A rotation to the thief's key, signed by the thief, is not accepted
	// in place of the real one: it must be signed by the key before it.
	thief, _ := receipts.GenerateKey()
	r, _ := (receipts.Signed{Record: string(body)}).Decode()
	r.NewKid, r.NewKey = thief.ID, base64.StdEncoding.EncodeToString(thief.Pub)
	forged, _ := receipts.SignRecordForTest(r, thief.Priv)
	fsig, _ := forged.RawSig()
	if _, err := db.Exec(`UPDATE key_history SET body=?, sig=? WHERE seq=?`, []byte(forged.Record), fsig, r.Seq); err != nil {
		t.Fatal(err)
	}
	out, err = runCLI(t, env, "verify", "--db", o.Path, "--pubkey", pub)
	if !errors.Is(err, receiptscli.ErrBad) || !strings.Contains(out, fmt.Sprintf("record %d: bad signature", r.Seq)) {
		t.Fatalf("forged rotation: %v %s", err, out)
	}
	if _, err := db.Exec(`DELETE FROM key_history`); err != nil {
		t.Fatal(err)
	}
	out, err = runCLI(t, env, "verify", "--db", o.Path, "--pubkey", pub)
	if !errors.Is(err, receiptscli.ErrBad) || !strings.Contains(out, "unknown key") {
		t.Fatalf("rotations removed from the history: %v %s", err, out)
	}
}

// `receipts checkpoint` writes the box's signed checkpoint of its head,
// and the cloud's when there is one, in the file `verify --checkpoint`
// reads; after the tail is cut (head row fixed, stored checkpoints
// deleted, as someone covering their tracks would), verify with that file
// says "tail truncated".
func TestCheckpointCommandCatchesTruncation(t *testing.T) {
	env, o, _ := trustLedger(t, 6)
	real, _ := receipts.LoadKey(o.KeyFile)
	pub := writePubPEM(t, env.DataDir, real)
	cpFile := filepath.Join(env.DataDir, "cp.ndjson")
	// A cloud checkpoint through seq 4, stored by the box.
	l, err := receipts.Open(o)
	if err != nil {
		t.Fatal(err)
	}
	s4, _ := l.Get(context.Background(), 4)
	cloud, _ := receipts.GenerateKey()
	sc, _ := receipts.SignCheckpoint(receipts.Checkpoint{Box: "box1", AckedThrough: 4, Head: s4.Hash, Turnover: 4 * 2500}, cloud.Priv)
	cp, _ := sc.Open(nil)
	if err := l.Ack(context.Background(), cp, sc); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if out, err := runCLI(t, env, "checkpoint", "--out", cpFile); err != nil || !strings.Contains(out, "the box's through seq 6, the cloud's through seq 4") {
		t.Fatalf("checkpoint: %v %s", err, out)
	}
	b, _ := os.ReadFile(cpFile)
	if n := strings.Count(string(b), "\n"); n != 2 {
		t.Fatalf("%d lines:\n%s", n, b)
	}
	if out, err := runCLI(t, env, "verify", "--pubkey", pub, "--checkpoint", cpFile); err != nil {
		t.Fatalf("untouched: %v %s", err, out)
	}
	db, err := sqlitex.Open(o.Path, sqlitex.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`DELETE FROM records WHERE seq > 5`, `UPDATE head SET seq = 5, hash = (SELECT hash FROM records WHERE seq = 5), turnover = 12500`, `DELETE FROM checkpoints`} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	if out, err := runCLI(t, env, "verify", "--pubkey", pub); err != nil {
		t.Logf("without the checkpoint file the cut is invisible: %v %s", err, out)
	} else {
		t.Logf("without the checkpoint file: %s", strings.TrimSpace(out))
	}
	out, err := runCLI(t, env, "verify", "--pubkey", pub, "--checkpoint", cpFile)
	if !errors.Is(err, receiptscli.ErrBad) || !strings.Contains(out, "FAIL record 6: tail truncated") {
		t.Fatalf("truncated tail: %v %s", err, out)
	}
	// The export of the cut ledger fails the same way.
	exp := filepath.Join(env.DataDir, "export.ndjson")
	if _, err := runCLI(t, env, "export", "--out", exp); err != nil {
		t.Fatal(err)
	}
	out, err = runCLI(t, env, "verify", "--file", exp, "--pubkey", pub, "--checkpoint", cpFile)
	if !errors.Is(err, receiptscli.ErrBad) || !strings.Contains(out, "FAIL record 6: tail truncated") {
		t.Fatalf("truncated export: %v %s", err, out)
	}
	// A checkpoint file that was altered is refused outright.
	os.WriteFile(cpFile, bytes.Replace(b, []byte(`acked_through\":6`), []byte(`acked_through\":2`), 1), 0o644)
	if out, err := runCLI(t, env, "verify", "--pubkey", pub, "--checkpoint", cpFile); err == nil || !strings.Contains(err.Error(), "does not verify") {
		t.Fatalf("altered checkpoint: %v %s", err, out)
	}
}
