package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"fieldkit/internal/mqtttest"
	"fieldkit/printer/template"
	"fieldkit/sync/receipts"
)

// rehearsalConfig is a show box with auth on, a ZPL pickup printer and a
// scene for the rehearsal to fire.
func rehearsalConfig(t *testing.T) string {
	t.Helper()
	scenes := t.TempDir()
	// restart: a fire while a run is still going (the drive catching up
	// after a stall) restarts it instead of being refused.
	flash := "name: flash\ndescription: Cue lamp flash\npolicy: restart\nsteps:\n" +
		"  - {at: 0s, target: cue_lamp, do: \"on\"}\n  - {at: 100ms, target: cue_lamp, do: \"off\"}\n  - {at: 200ms, target: cue_lamp, do: \"on\"}\n  - {at: 300ms, target: cue_lamp, do: \"off\"}\n"
	if err := os.WriteFile(filepath.Join(scenes, "flash.yaml"), []byte(flash), 0o644); err != nil {
		t.Fatal(err)
	}
	return writeConfig(t, `box: show1
board: sim
http:
  auth: required
outputs:
  cue_lamp: {kind: gpio, pin: cue_lamp}
printers:
  counter: {language: zpl, transport: fake, width_dots: 406}
receipts:
  pickup_printer: counter
scenes:
  dir: `+scenes+`
`)
}

func callJSON(t *testing.T, method, url, bearer string, body []byte, out any) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+bearer)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	if out != nil {
		_ = json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

// pyVerifyExport runs the reference Python verifier of real receipts
// (sync/receipts/testdata/verify.py, written from the README) on an
// export and returns its verdict line; it skips without python3 and its
// cryptography package unless FIELDKIT_PYTHON names the interpreter.
func pyVerifyExport(t *testing.T, pub ed25519.PublicKey, export []byte) string {
	t.Helper()
	py := os.Getenv("FIELDKIT_PYTHON")
	if py == "" {
		var err error
		if py, err = exec.LookPath("python3"); err != nil {
			t.Skip("python3 not installed")
		}
	}
	if out, err := exec.Command(py, "-c", "import cryptography.hazmat.primitives.asymmetric.ed25519").CombinedOutput(); err != nil {
		if os.Getenv("FIELDKIT_PYTHON") != "" {
			t.Fatalf("%s cannot import cryptography: %v %s", py, err, out)
		}
		t.Skipf("%s has no cryptography package", py)
	}
	dir := t.TempDir()
	pem, exp := filepath.Join(dir, "box.pem"), filepath.Join(dir, "x.ndjson")
	os.WriteFile(pem, receipts.PublicPEM(pub), 0o644)
	os.WriteFile(exp, export, 0o644)
	out, _ := exec.Command(py, "../sync/receipts/testdata/verify.py", pem, exp).CombinedOutput()
	m := regexp.MustCompile(`(?m)^(ok \d+ records.*|FAIL record \d+: [a-z ]+):?.*$`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("python verifier: no verdict:\n%s", out)
	}
	return string(m[1])
}

// A dress rehearsal of 1,000 phantom sales against the real agent (its
// binary, real SQLite, its embedded MQTT broker, a fake ZPL printer): the
// command refuses until the box rehearses; then every sale, over HTTP
// and MQTT, with every payment method and some discreet, is a rehearsal
// receipt with a label that says REHEARSAL; each label's code, scanned
// back at the pickup desk, hands its phantom order over in the rehearsal
// ledger, and a second scan is refused; the sales ledger's head does not
// move; no rehearsal record, sale or hand-over, verifies as a real
// receipt with the Go or the Python verifier; and only the admin can make
// sales real again, after which a rehearsal label's code is unknown.
func TestRehearsal1000PhantomSales(t *testing.T) {
	dataDir := t.TempDir()
	mq := mqtttest.FreePort(t)
	cfgFile := rehearsalConfig(t)
	p := startAgent(t, nil, "--config", cfgFile, "--data", dataDir, "--mqtt-listen", mq)
	p.waitHealthy(t, 15*time.Second)
	base := "http://" + p.http
	crew, admin := readTokens(t, dataDir)

	// Two real sales first.
	for i := 1; i <= 2; i++ {
		sale := fmt.Sprintf(`{"client_id":"pos-real-%d","order":"A-%d","items":[{"sku":"TEE","qty":1,"price":2500}],"total":2500,"currency":"EUR","pay":"card"}`, i, i)
		if c := callJSON(t, "POST", base+"/api/receipts", crew, []byte(sale), nil); c != http.StatusCreated {
			t.Fatalf("real sale %d: %d", i, c)
		}
	}
	var before receipts.RehearsalStatus
	callJSON(t, "GET", base+"/api/rehearsal", crew, nil, &before)
	if before.Rehearsal || before.Real == nil || before.Real.Seq != 2 {
		t.Fatalf("before the rehearsal: %+v", before)
	}

	ctx := context.Background()
	common := []string{"--config", cfgFile, "--data", dataDir}
	rehearseArgs := append(append([]string{"rehearse"}, common...), "--agent", base, "--mqtt", "tcp://"+mq)
	var out, errb bytes.Buffer
	if code := cli(ctx, append(rehearseArgs, "--sales", "5"), &out, &errb); code != 1 || !strings.Contains(errb.String(), "not in rehearsal mode") {
		t.Fatalf("rehearse outside rehearsal mode: exit %d\n%s%s", code, out.String(), errb.String())
	}

	// The crew (an operator) may switch it on.
	if c := callJSON(t, "POST", base+"/api/rehearsal/on", crew, nil, nil); c != 200 {
		t.Fatalf("crew switching rehearsal on: %d", c)
	}
	report := filepath.Join(t.TempDir(), "report.json")
	out.Reset()
	errb.Reset()
	start := time.Now()
	code := cli(ctx, append(rehearseArgs, "--sales", "1000", "--rate", "250", "--workers", "32",
		"--scene", "flash", "--scene-every", "100", "--scan", "--scan-twice", "0.05", "--json", report), &out, &errb)
	t.Logf("rehearse took %v:\n%s", time.Since(start).Round(time.Millisecond), out.String())
	if code != 0 {
		t.Fatalf("rehearse: exit %d\n%s", code, errb.String())
	}
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var rep RehearsalReport
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	// A label may end uncertain (the fake printer's status answer late
	// on a loaded machine): the report must then count it as such, as a
	// failure and by its printer alert. Any other failure fails the test.
	uncertain := rep.Failures["label_uncertain"]
	delete(rep.Failures, "label_uncertain")
	if rep.Completed != 1000 || len(rep.Failures) != 0 {
		t.Fatalf("completed %d, failures %v", rep.Completed, rep.Failures)
	}
	if uncertain > 0 {
		t.Logf("%d labels ended uncertain (printer alerts seen: %d)", uncertain, rep.Alerts.Printer)
		if rep.Labels.Failed != uncertain || rep.Alerts.Printer < uncertain {
			t.Fatalf("%d uncertain labels, but the report counts %d failed labels and %d printer alerts", uncertain, rep.Labels.Failed, rep.Alerts.Printer)
		}
	}
	if rep.ByPath["http"] == 0 || rep.ByPath["mqtt"] == 0 || rep.Discreet == 0 || rep.Discreet == 1000 {
		t.Fatalf("paths %v, discreet %d: want both paths and some discreet", rep.ByPath, rep.Discreet)
	}
	for _, pay := range receipts.PayMethods {
		if rep.ByPay[pay] == 0 {
			t.Fatalf("no sale paid by %s: %v", pay, rep.ByPay)
		}
	}
	if rep.Labels.Expected != 1000 || rep.Labels.Printed+rep.Labels.Failed != 1000 || rep.Labels.Marked != rep.Labels.Printed ||
		rep.Labels.Latency.N != rep.Labels.Printed || rep.Labels.Missing != 0 {
		t.Fatalf("labels %+v", rep.Labels)
	}
	if rep.SaleMS.N != 1000 || rep.SaleMS.P50 <= 0 || rep.SaleMS.P99 < rep.SaleMS.P50 {
		t.Fatalf("sale latency %+v", rep.SaleMS)
	}
	// Every run dispatches its first step at once (a restarted run may
	// end before the later ones).
	if rep.Cues.Runs == 0 || rep.Cues.Steps < rep.Cues.Runs {
		t.Fatalf("cue figures %+v: the scene fired during the run is not in them", rep.Cues)
	}
	// Every printed label was scanned back and handed over; every second
	// scan was refused.
	sc := rep.Scans
	if sc == nil || sc.Scanned != rep.Labels.Printed || sc.HandedOver != sc.Scanned || sc.Failed != 0 ||
		sc.Second == 0 || sc.Refused != sc.Second || sc.Latency.N != sc.HandedOver+sc.Second || sc.Latency.P50 <= 0 {
		t.Fatalf("scans %+v of %d printed labels", sc, rep.Labels.Printed)
	}
	if !rep.RealLedgerUntouched || rep.RealHeadAfter != *before.Real || rep.RehearsalHead != uint64(1000+sc.HandedOver) {
		t.Fatalf("ledgers: real %+v -> %+v, rehearsal head %d", rep.RealHeadBefore, rep.RealHeadAfter, rep.RehearsalHead)
	}

	// Every rehearsal label in the printer's queue, whatever its state,
	// says REHEARSAL first and last; the real sales' labels do not.
	var jobs []struct {
		ID    string `json:"id"`
		State string `json:"state"`
		Label struct {
			Elements []map[string]any `json:"elements"`
		} `json:"label"`
	}
	callJSON(t, "GET", base+"/api/printers/counter/jobs?limit=1000", crew, nil, &jobs)
	var marked int
	var rehCode string
	for _, j := range jobs {
		rehearsal := strings.HasPrefix(j.ID, "rehearsal-")
		if labelMarked(j.Label.Elements) != rehearsal {
			t.Fatalf("job %s: rehearsal %v but label marked %v: %v", j.ID, rehearsal, !rehearsal, j.Label.Elements)
		}
		if rehearsal {
			marked++
			rehCode = labelCode(j.Label.Elements, "qr")
		}
	}
	if marked != 1000 {
		t.Fatalf("%d rehearsal labels marked in the queue of %d jobs; want 1000", marked, len(jobs))
	}

	// A rehearsal label scanned at the pickup desk finds nothing, even
	// where its order number is a real sale's too.
	for _, code := range []string{receipts.RehearsalCodePrefix + "A-1", receipts.RehearsalCodePrefix + "show1:1:00000000"} {
		body, _ := json.Marshal(map[string]string{"code": code, "by": "desk"})
		if c := callJSON(t, "POST", base+"/api/pickup/scan", crew, body, nil); c != http.StatusNotFound {
			t.Fatalf("scanning rehearsal code %q: %d, want 404", code, c)
		}
	}
	if template.RehearsalMark+":" != receipts.RehearsalCodePrefix {
		t.Fatalf("the label's mark %q and the code prefix %q disagree", template.RehearsalMark, receipts.RehearsalCodePrefix)
	}

	// Switching back: the crew is refused, the admin is not.
	if c := callJSON(t, "POST", base+"/api/rehearsal/off", crew, nil, nil); c != http.StatusForbidden {
		t.Fatalf("crew switching rehearsal off: %d, want 403", c)
	}
	var after receipts.RehearsalStatus
	if c := callJSON(t, "POST", base+"/api/rehearsal/off", admin, nil, &after); c != 200 || after.Rehearsal {
		t.Fatalf("admin switching rehearsal off: %d %+v", c, after)
	}
	if after.Real == nil || *after.Real != *before.Real {
		t.Fatalf("the sales ledger's head moved: %+v -> %+v", before.Real, after.Real)
	}
	// Out of rehearsal, a rehearsal label names no order.
	body, _ := json.Marshal(map[string]string{"code": rehCode, "by": "desk"})
	if c := callJSON(t, "POST", base+"/api/pickup/scan", crew, body, nil); !strings.HasPrefix(rehCode, receipts.RehearsalCodePrefix) || c != http.StatusNotFound {
		t.Fatalf("scanning rehearsal label %q after the rehearsal: %d, want 404", rehCode, c)
	}

	// No rehearsal record is a real receipt: each one's signature fails
	// in the real domain (under the rehearsal key, so that only the
	// domain decides), the Go chain verifier refuses the export, and so
	// does the Python verifier written from the README.
	rr, err := receipts.OpenReader(filepath.Join(dataDir, receipts.RehearsalDB))
	if err != nil {
		t.Fatal(err)
	}
	defer rr.Close()
	rehKey, err := rr.FirstKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var exp bytes.Buffer
	if n, err := rr.Export(ctx, &exp, 0, 0); err != nil || n != 1000+sc.HandedOver {
		t.Fatalf("rehearsal export: %d records, %v", n, err)
	}
	lines := bufio.NewScanner(bytes.NewReader(exp.Bytes()))
	lines.Buffer(make([]byte, 0, 64<<10), 1<<20)
	var n, handovers int
	for lines.Scan() {
		var sg receipts.Signed
		if err := json.Unmarshal(lines.Bytes(), &sg); err != nil {
			t.Fatal(err)
		}
		sig, _ := sg.RawSig()
		if ed25519.Verify(rehKey, receipts.SignedMessage([]byte(sg.Record)), sig) {
			t.Fatalf("rehearsal record %d verifies as a real receipt", sg.Seq)
		}
		if !ed25519.Verify(rehKey, receipts.Rehearsal.Message([]byte(sg.Record)), sig) {
			t.Fatalf("rehearsal record %d is not a rehearsal record either", sg.Seq)
		}
		if rec, err := sg.Decode(); err == nil && rec.Type == receipts.TypeHandover {
			handovers++
		}
		n++
	}
	if n != 1000+sc.HandedOver || handovers != sc.HandedOver {
		t.Fatalf("%d records checked, %d hand-overs; want %d hand-overs", n, handovers, sc.HandedOver)
	}
	if rf, err := rr.Refusals(ctx, time.Time{}); err != nil || len(rf) != sc.Refused {
		t.Fatalf("refused second scans kept in the rehearsal ledger: %d, %v; want %d", len(rf), err, sc.Refused)
	}
	if vr, err := receipts.VerifyExport(bytes.NewReader(exp.Bytes()), rehKey); err != nil || vr.OK() {
		t.Fatalf("the Go verifier accepted the rehearsal export as receipts: %+v %v", vr, err)
	}
	if v := pyVerifyExport(t, rehKey, exp.Bytes()); !strings.HasPrefix(v, "FAIL record 1: bad signature") {
		t.Fatalf("the Python verifier says %q of the rehearsal export", v)
	}
	// The sales ledger itself verifies with both, as before.
	var realExp bytes.Buffer
	rl, err := receipts.OpenReader(filepath.Join(dataDir, "receipts.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer rl.Close()
	realKey, _ := rl.FirstKey(ctx)
	rl.Export(ctx, &realExp, 0, 0)
	if v := pyVerifyExport(t, realKey, realExp.Bytes()); !strings.HasPrefix(v, "ok 2 records") {
		t.Fatalf("the Python verifier says %q of the sales ledger", v)
	}
}
