package receipts

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fieldkit/internal/clock"
	"fieldkit/internal/doctor"
	"fieldkit/internal/httpapi"
)

func newRehearsalService(t *testing.T, dir string) *Service {
	t.Helper()
	s, err := New(Config{}, Deps{Box: "box1", DataDir: dir, Clock: clock.NewFake(t0),
		Sync: SyncFunc(func() bool { return true }), BootID: "b", Rehearsal: true})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func saleN(t *testing.T, i int, discreet bool) Order {
	t.Helper()
	body := fmt.Sprintf(`{"client_id":"pos-%04d","order":"R-%d","items":[{"sku":"TEE","qty":1,"price":1500}],"total":1500,"currency":"EUR","pay":%q,"buyer":{"name":"Sam R."},"discreet":%v}`,
		i, i, PayMethods[i%len(PayMethods)], discreet)
	o, err := ParseOrder([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// pyVerdict runs the reference Python verifier, written from the README
// for real receipts, over an export; "" when no python is available.
func pyVerdict(t *testing.T, pub ed25519.PublicKey, export []byte) string {
	t.Helper()
	py := python(t)
	dir := t.TempDir()
	pem, exp := filepath.Join(dir, "box.pem"), filepath.Join(dir, "x.ndjson")
	os.WriteFile(pem, PublicPEM(pub), 0o644)
	os.WriteFile(exp, export, 0o644)
	out, _ := exec.Command(py, "testdata/verify.py", pem, exp).CombinedOutput()
	m := pyResult.FindSubmatch(out)
	if m == nil {
		t.Fatalf("python: no verdict:\n%s", out)
	}
	return string(m[0])
}

// A box in rehearsal signs into its own ledger: the sales ledger's head
// does not move, and no rehearsal record verifies as a real receipt, by
// the Go verifier or the Python one, not even under the rehearsal key;
// it verifies only in the rehearsal domain. The mode outlives a restart.
func TestRehearsalLedgerIsSeparate(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := newRehearsalService(t, dir)
	if _, _, err := s.Append(ctx, saleN(t, 0, false)); err != nil {
		t.Fatal(err)
	}
	realHead, _ := s.Ledger().Head(ctx)
	if _, err := s.SetMode(true, "test"); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 20; i++ {
		rc, err := s.append(ctx, saleN(t, i, i%3 == 0))
		if err != nil {
			t.Fatal(err)
		}
		if !rc.Rehearsal {
			t.Fatalf("sale %d in rehearsal mode answered as a real receipt", i)
		}
	}
	if h, _ := s.Ledger().Head(ctx); h != realHead {
		t.Fatalf("the sales ledger moved during the rehearsal: %+v -> %+v", realHead, h)
	}
	s.Close()

	// Restarted: still rehearsing.
	s = newRehearsalService(t, dir)
	defer s.Close()
	if !s.Rehearsing() {
		t.Fatal("the rehearsal mode did not survive a restart")
	}
	var exp bytes.Buffer
	if n, err := s.RehearsalLedger().Export(ctx, &exp, 0, 0); err != nil || n != 20 {
		t.Fatalf("rehearsal export: %d records, %v", n, err)
	}
	rehKey := s.RehearsalLedger().PublicKey().Pub
	for name, key := range map[string]ed25519.PublicKey{"rehearsal key": rehKey, "sales key": s.Ledger().PublicKey().Pub} {
		rep, err := VerifyExport(bytes.NewReader(exp.Bytes()), key)
		if err != nil {
			t.Fatal(err)
		}
		if rep.OK() || rep.Problem.Seq != 1 {
			t.Fatalf("%s: the real verifier accepted a rehearsal export: %+v", name, rep)
		}
	}
	// Each record alone, as a forger would try: a real chain at that
	// point with the rehearsal key still refuses its signature.
	lines := strings.Split(strings.TrimSpace(exp.String()), "\n")
	for _, line := range lines {
		var sg Signed
		if err := json.Unmarshal([]byte(line), &sg); err != nil {
			t.Fatal(err)
		}
		body := []byte(sg.Record)
		sig, _ := sg.RawSig()
		if ed25519.Verify(rehKey, SignedMessage(body), sig) {
			t.Fatalf("record %d verifies as a real receipt", sg.Seq)
		}
		if !ed25519.Verify(rehKey, Rehearsal.Message(body), sig) {
			t.Fatalf("record %d does not verify as a rehearsal record", sg.Seq)
		}
	}
	// In its own domain the chain is whole.
	c := NewChainIn(Rehearsal, "", rehKey)
	for _, line := range lines {
		var sg Signed
		_ = json.Unmarshal([]byte(line), &sg)
		if _, _, err := c.Check(sg); err != nil {
			t.Fatalf("rehearsal chain: %v", err)
		}
	}
	if v := pyVerdict(t, rehKey, exp.Bytes()); !strings.HasPrefix(v, "FAIL record 1: bad signature") {
		t.Fatalf("the Python verifier says %q of a rehearsal export", v)
	}
	// A real export still verifies in Python: the refusal is the domain.
	var realExp bytes.Buffer
	s.Ledger().Export(ctx, &realExp, 0, 0)
	if v := pyVerdict(t, s.Ledger().PublicKey().Pub, realExp.Bytes()); !strings.HasPrefix(v, "ok 1 records") {
		t.Fatalf("the Python verifier says %q of the real export", v)
	}

	// The rehearsal file can never be opened as the sales ledger.
	_, err := Open(Options{Path: filepath.Join(dir, RehearsalDB), KeyFile: filepath.Join(dir, RehearsalKeyFile), Box: "box1", BootID: "b"})
	if err == nil || !strings.Contains(err.Error(), "rehearsal ledger") {
		t.Fatalf("opening the rehearsal ledger as a sales ledger: %v", err)
	}
}

type roleAuth httpapi.Role

func (r roleAuth) RoleOf(*http.Request) (httpapi.Role, error) { return httpapi.Role(r), nil }

// The crew may start a rehearsal; only the admin may end it.
func TestRehearsalSwitchRoles(t *testing.T) {
	s := newRehearsalService(t, t.TempDir())
	defer s.Close()
	post := func(role httpapi.Role, path string) int {
		rt := httpapi.NewRouter(roleAuth(role), nil)
		s.Routes(rt)
		req, _ := http.NewRequest(http.MethodPost, path, nil)
		w := httptest.NewRecorder()
		rt.Handler().ServeHTTP(w, req)
		return w.Code
	}
	if c := post(httpapi.Crew, "/api/rehearsal/on"); c != 200 || !s.Rehearsing() {
		t.Fatalf("crew switching on: %d, rehearsing %v", c, s.Rehearsing())
	}
	if c := post(httpapi.Crew, "/api/rehearsal/off"); c != http.StatusForbidden || !s.Rehearsing() {
		t.Fatalf("crew switching off: %d, rehearsing %v", c, s.Rehearsing())
	}
	if r := CheckMode(s.Mode()); r.Status == doctor.OK {
		t.Fatalf("the pre-show check passes a box in rehearsal: %+v", r)
	}
	if c := post(httpapi.Admin, "/api/rehearsal/off"); c != 200 || s.Rehearsing() {
		t.Fatalf("admin switching off: %d, rehearsing %v", c, s.Rehearsing())
	}
}

// The mode file is read at every start: whatever it holds, ReadMode
// answers a mode or an error, and a mode it reads survives a rewrite.
func FuzzReadMode(f *testing.F) {
	for _, s := range []string{`{"rehearsal":true,"since":"2026-06-01T18:00:00Z","by":"ana"}`, `{"rehearsal":false}`, `{}`, `{"rehearsal":1}`, `{"extra":true}`, ``, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, ModeFile), b, 0o600); err != nil {
			t.Fatal(err)
		}
		m, err := ReadMode(dir)
		if err != nil {
			return
		}
		if err := writeMode(dir, m); err != nil {
			t.Fatal(err)
		}
		m2, err := ReadMode(dir)
		if err != nil || m2.Rehearsal != m.Rehearsal || !m2.Since.Equal(m.Since) || m2.By != m.By {
			t.Fatalf("mode %+v read back as %+v (%v)", m, m2, err)
		}
	})
}

// A rehearsal label's code never hands over a real sale, even one with
// the same order number.
func TestScanRefusesRehearsalCode(t *testing.T) {
	ctx := context.Background()
	s := newRehearsalService(t, t.TempDir())
	defer s.Close()
	if _, _, err := s.Append(ctx, saleN(t, 7, false)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Scan(ctx, RehearsalCodePrefix+"R-7", "desk"); !errors.Is(err, ErrUnknownCode) {
		t.Fatalf("scan of a rehearsal code: %v", err)
	}
	if h, _ := s.Ledger().Head(ctx); h.Seq != 1 {
		t.Fatalf("a rehearsal scan wrote to the sales ledger: head %d", h.Seq)
	}
	if _, err := s.Scan(ctx, "R-7", "desk"); err != nil {
		t.Fatalf("the real order itself: %v", err)
	}
}

// While the box rehearses, a rehearsal label hands over its phantom
// order in the rehearsal ledger, once, by any of its codes; real codes
// still hand over real orders in the sales ledger. The rehearsal
// hand-overs are signed in the rehearsal domain: they fail as real
// records with the Go and the Python verifier, and the sales ledger
// holds none of them. Outside a rehearsal a rehearsal code is unknown.
func TestRehearsalHandOver(t *testing.T) {
	ctx := context.Background()
	s := newRehearsalService(t, t.TempDir())
	defer s.Close()
	if _, _, err := s.Append(ctx, saleN(t, 7, false)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetMode(true, "test"); err != nil {
		t.Fatal(err)
	}
	// The same order number as the real sale, and a discreet one.
	plain, err := s.append(ctx, saleN(t, 7, false))
	if err != nil || !plain.Rehearsal {
		t.Fatalf("rehearsal sale: %+v %v", plain, err)
	}
	discreet, err := s.append(ctx, saleN(t, 8, true))
	if err != nil || discreet.Receipt.Buyer == nil || discreet.Receipt.Buyer.Token == "" {
		t.Fatalf("discreet rehearsal sale: %+v %v", discreet, err)
	}
	realHead, _ := s.Ledger().Head(ctx)

	qr := fmt.Sprintf("%sbox1:%d:%s", RehearsalCodePrefix, plain.Seq, plain.Short)
	res, err := s.Scan(ctx, qr, "desk 1")
	if err != nil || !res.Rehearsal || !res.Handover.Rehearsal || res.Pickup.Seq != plain.Seq || res.Pickup.Order != "R-7" {
		t.Fatalf("rehearsal QR scan: %+v %v", res, err)
	}
	// The label's CODE128 names the same phantom order: refused, with
	// when and by whom.
	var ho *HandedOver
	if _, err := s.Scan(ctx, RehearsalCodePrefix+"R-7", "desk 2"); !errors.As(err, &ho) || ho.By != "desk 1" || ho.Sale != plain.Seq {
		t.Fatalf("second scan of a rehearsal order: %v", err)
	}
	if r := s.lastRefused.Load(); r == nil || !r.Rehearsal {
		t.Fatalf("the page's refused scan: %+v", r)
	}
	if res, err := s.Scan(ctx, RehearsalCodePrefix+discreet.Receipt.Buyer.Token, "desk 1"); err != nil || !res.Pickup.Discreet {
		t.Fatalf("rehearsal discreet scan: %+v %v", res, err)
	}
	if h, _ := s.Ledger().Head(ctx); h != realHead {
		t.Fatalf("rehearsal hand-overs moved the sales ledger: %+v -> %+v", realHead, h)
	}
	if h, _ := s.RehearsalLedger().Head(ctx); h.Seq != 4 {
		t.Fatalf("rehearsal ledger head %d; want 2 sales and 2 hand-overs", h.Seq)
	}
	if rf, err := s.RehearsalLedger().Refusals(ctx, time.Time{}); err != nil || len(rf) != 1 || rf[0].By != "desk 2" {
		t.Fatalf("rehearsal refusals: %+v %v", rf, err)
	}

	// A real order is still handed over during the rehearsal, for real.
	res, err = s.Scan(ctx, "R-7", "desk 1")
	if err != nil || res.Rehearsal || res.Handover.Rehearsal {
		t.Fatalf("real scan during a rehearsal: %+v %v", res, err)
	}
	if h, _ := s.Ledger().Head(ctx); h.Seq != realHead.Seq+1 {
		t.Fatalf("the real hand-over is not in the sales ledger: head %d", h.Seq)
	}

	// The rehearsal hand-overs are no real records.
	var exp bytes.Buffer
	if _, err := s.RehearsalLedger().Export(ctx, &exp, 0, 0); err != nil {
		t.Fatal(err)
	}
	rehKey := s.RehearsalLedger().PublicKey().Pub
	c := NewChainIn(Rehearsal, "", rehKey)
	handovers := 0
	for _, line := range strings.Split(strings.TrimSpace(exp.String()), "\n") {
		var sg Signed
		if err := json.Unmarshal([]byte(line), &sg); err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.Check(sg); err != nil {
			t.Fatalf("rehearsal chain: %v", err)
		}
		rec, _ := sg.Decode()
		if rec.Type != TypeHandover {
			continue
		}
		handovers++
		sig, _ := sg.RawSig()
		if ed25519.Verify(rehKey, SignedMessage([]byte(sg.Record)), sig) {
			t.Fatalf("rehearsal hand-over %d verifies as a real record", sg.Seq)
		}
	}
	if handovers != 2 {
		t.Fatalf("%d hand-overs in the rehearsal export; want 2", handovers)
	}
	if rep, err := VerifyExport(bytes.NewReader(exp.Bytes()), rehKey); err != nil || rep.OK() {
		t.Fatalf("the real verifier accepted the rehearsal export: %+v %v", rep, err)
	}
	if v := pyVerdict(t, rehKey, exp.Bytes()); !strings.HasPrefix(v, "FAIL record 1: bad signature") {
		t.Fatalf("the Python verifier says %q of the rehearsal export", v)
	}
	var realExp bytes.Buffer
	s.Ledger().Export(ctx, &realExp, 0, 0)
	if v := pyVerdict(t, s.Ledger().PublicKey().Pub, realExp.Bytes()); !strings.HasPrefix(v, "ok 2 records") {
		t.Fatalf("the Python verifier says %q of the sales ledger with its hand-over", v)
	}

	// Rehearsal over: its labels are unknown again.
	if _, err := s.SetMode(false, "admin"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Scan(ctx, RehearsalCodePrefix+discreet.Receipt.Buyer.Token, "desk 1"); !errors.Is(err, ErrUnknownCode) {
		t.Fatalf("rehearsal code after the rehearsal: %v", err)
	}
}
