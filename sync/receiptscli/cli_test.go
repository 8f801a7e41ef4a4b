package receiptscli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"fieldkit/sync/receipts"
)

func TestCLI(t *testing.T) {
	dir := t.TempDir()
	env := Env{Box: "box1", DataDir: dir}
	cfg := env.Config.WithDefaults(dir)
	l, err := receipts.Open(receipts.Options{Path: cfg.DB, KeyFile: cfg.KeyFile, Box: "box1", BootID: "b", Sync: receipts.SyncFunc(func() bool { return true })})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 5; i++ {
		o := receipts.Order{ClientID: fmt.Sprint("p", i), Order: "A", Items: []receipts.Item{{SKU: "TEE", Qty: 2, Price: 1250}}, Total: 2500, Currency: "EUR", Pay: "cash"}
		if _, _, err := l.Append(context.Background(), o); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	run := func(args ...string) (string, error) {
		var out, errb bytes.Buffer
		err := RunCLI(context.Background(), args, &out, &errb, env)
		return out.String() + errb.String(), err
	}
	out, err := run("verify")
	if err != nil || !strings.Contains(out, "ok: box box1, 5 records") {
		t.Fatalf("%v %s", err, out)
	}
	pem, err := run("pubkey")
	if err != nil || !strings.HasPrefix(pem, "-----BEGIN PUBLIC KEY-----") {
		t.Fatalf("%v %s", err, pem)
	}
	pubFile := filepath.Join(dir, "box.pem")
	os.WriteFile(pubFile, []byte(pem), 0o644)
	exp := filepath.Join(dir, "export.ndjson")
	if _, err := run("export", "--out", exp); err != nil {
		t.Fatal(err)
	}
	if out, err := run("verify", "--file", exp, "--pubkey", pubFile); err != nil || !strings.Contains(out, "5 records") {
		t.Fatalf("%v %s", err, out)
	}
	b, _ := os.ReadFile(exp)
	os.WriteFile(exp, bytes.Replace(b, []byte(`\"pay\":\"cash\"`), []byte(`\"pay\":\"card\"`), 1), 0o600)
	out, err = run("verify", "--file", exp, "--pubkey", pubFile)
	if !errors.Is(err, ErrBad) || !strings.Contains(out, "FAIL record 1: bad signature") {
		t.Fatalf("%v %s", err, out)
	}
	out, err = run("report")
	if err != nil || !strings.Contains(out, "receipts  5 (seq 1-5)") || !strings.Contains(out, "TEE                     10") {
		t.Fatalf("%v %s", err, out)
	}
	if _, err := run("bogus"); err == nil {
		t.Fatal("unknown command accepted")
	}
	// The documented Python verifier, when python3 with cryptography is
	// installed, checks the untouched export with only the PEM key.
	if _, err := exec.LookPath("python3"); err == nil {
		if exec.Command("python3", "-c", "import cryptography").Run() == nil {
			run("export", "--out", exp)
			script, err := os.ReadFile("../receipts/testdata/verify.py")
			if err != nil {
				t.Fatal(err)
			}
			py := filepath.Join(dir, "verify.py")
			os.WriteFile(py, script, 0o600)
			got, err := exec.Command("python3", py, pubFile, exp).CombinedOutput()
			if err != nil || !strings.Contains(string(got), "ok 5 records") {
				t.Fatalf("python verifier: %v %s", err, got)
			}
		}
	}
}

// `receipts verify` verifies receipts: on a rehearsal ledger, or on its
// export, it fails; `receipts report` makes no report of one.
func TestCLIRefusesRehearsalLedger(t *testing.T) {
	dir := t.TempDir()
	env := Env{Box: "box1", DataDir: dir}
	db, key := filepath.Join(dir, receipts.RehearsalDB), filepath.Join(dir, receipts.RehearsalKeyFile)
	l, err := receipts.Open(receipts.Options{Path: db, KeyFile: key, Box: "box1", BootID: "b", Domain: receipts.Rehearsal,
		Sync: receipts.SyncFunc(func() bool { return true })})
	if err != nil {
		t.Fatal(err)
	}
	o := receipts.Order{ClientID: "p1", Order: "R-1", Items: []receipts.Item{{SKU: "TEE", Qty: 1, Price: 1250}}, Total: 1250, Currency: "EUR", Pay: "card"}
	if _, _, err := l.Append(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	pubFile := filepath.Join(dir, "reh.pem")
	os.WriteFile(pubFile, receipts.PublicPEM(l.PublicKey().Pub), 0o644)
	l.Close()
	run := func(args ...string) (string, error) {
		var out, errb bytes.Buffer
		err := RunCLI(context.Background(), args, &out, &errb, env)
		return out.String() + errb.String(), err
	}
	if out, err := run("verify", "--db", db); !errors.Is(err, ErrBad) || !strings.Contains(out, "rehearsal ledger") {
		t.Fatalf("verify of the rehearsal ledger: %v %s", err, out)
	}
	exp := filepath.Join(dir, "reh.ndjson")
	if _, err := run("export", "--db", db, "--out", exp); err != nil {
		t.Fatal(err)
	}
	if out, err := run("verify", "--file", exp, "--pubkey", pubFile); !errors.Is(err, ErrBad) || !strings.Contains(out, "FAIL record 1: bad signature") {
		t.Fatalf("verify of a rehearsal export: %v %s", err, out)
	}
	if out, err := run("report", "--db", db); err == nil || !strings.Contains(err.Error(), "rehearsal ledger") {
		t.Fatalf("report of the rehearsal ledger: %v %s", err, out)
	}
}
