package main

import (
	"bytes"
	"encoding/json"
	"fieldkit/internal/testutil"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"fieldkit/internal/mqtttest"
	"fieldkit/sync/receipts"
)

// auditCLI runs `firmware-agent receipts audit` and returns its stdout,
// stderr and exit status.
func auditCLI(t *testing.T, cfg, data string, logs ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(agentBin, append([]string{"receipts", "--config", cfg, "--data", data, "audit"}, logs...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// 1,000 mixed sales through the agent's real paths (HTTP and MQTT, every
// payment method, a third discreet, buyers with names, phones and
// emails), pickup labels printed, some orders handed over and some
// scanned twice, with the agent logging at debug level: the audit of the
// ledger and the log finds nothing. The same log with one discreet
// sale's buyer planted in a line is found, by file, line and sale.
func TestAuditCleanAfterThousandSales(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 sales")
	}
	mqttAddr := mqtttest.FreePort(t)
	cfg := writeConfig(t, `box: audit1
board: sim
log: {level: debug}
printers:
  counter: {language: escpos, transport: fake, width_dots: 576}
receipts:
  pickup_printer: counter
`)
	p := startAgent(t, nil, "--config", cfg, "--mqtt-listen", mqttAddr)
	p.waitHealthy(t, 10*time.Second)
	data := p.cmd.Args[slices.Index(p.cmd.Args, "--data")+1]
	base := "http://" + p.http
	cl := mqtttest.Connect(t, "tcp://"+mqttAddr, "pos2")
	replies := cl.Subscribe("fieldkit/audit1/receipts/new/reply/#")
	// Everything the box says on MQTT, kept for the check below.
	var heard syncBuf
	tok := mqtttest.Connect(t, "tcp://"+mqttAddr, "listener").Paho().Subscribe("fieldkit/audit1/#", 1, func(_ paho.Client, m paho.Message) {
		if m.Topic() != "fieldkit/audit1/receipts/new" { // the tablet's own orders, going in
			fmt.Fprintf(&heard, "%s %s\n", m.Topic(), m.Payload())
		}
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}

	const n = 1000
	pays := receipts.PayMethods
	saleOf := func(i int) string {
		o := map[string]any{
			"client_id": fmt.Sprintf("pos-%04d", i), "order": fmt.Sprintf("B-%04d", i),
			"items": []map[string]any{{"sku": "TEE", "qty": 1 + i%3, "price": 2500}, {"sku": "CAP", "qty": 1, "price": 1000}},
			"total": (1+i%3)*2500 + 1000, "currency": "EUR", "pay": pays[i%len(pays)],
		}
		switch i % 4 {
		case 0, 1:
			o["buyer"] = map[string]any{"name": fmt.Sprintf("Buyer Number%d", i), "phone": fmt.Sprintf("+49 151 %07d", i), "email": fmt.Sprintf("buyer%d@example.com", i)}
		case 2:
			o["buyer"] = map[string]any{"name": fmt.Sprintf("Only Name%d", i)}
		}
		if i%3 == 0 {
			o["discreet"] = true
		}
		b, _ := json.Marshal(o)
		return string(b)
	}
	var mu sync.Mutex
	got := map[int]receipts.Receipt{}
	var wg sync.WaitGroup
	work := make(chan int)
	for w := 0; w < 6; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				if i%10 == 5 {
					continue // sent over MQTT below
				}
				resp, err := http.Post(base+"/api/receipts", "application/json", strings.NewReader(saleOf(i)))
				if err != nil {
					t.Error(err)
					return
				}
				var r receipts.Receipt
				err = json.NewDecoder(resp.Body).Decode(&r)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusCreated {
					t.Errorf("sale %d: %s %v", i, resp.Status, err)
					return
				}
				mu.Lock()
				got[i] = r
				mu.Unlock()
			}
		}()
	}
	for i := 0; i < n; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	for i := 5; i < n; i += 10 {
		cl.Publish("fieldkit/audit1/receipts/new", 1, false, saleOf(i))
		m := mqtttest.Await(t, replies, 10*time.Second, fmt.Sprintf("MQTT reply for sale %d", i), func(m mqtttest.Msg) bool {
			return strings.HasSuffix(m.Topic, fmt.Sprintf("/pos-%04d", i))
		})
		var rep receipts.MQTTReply
		if err := json.Unmarshal([]byte(m.Payload), &rep); err != nil || rep.Receipt == nil {
			t.Fatalf("MQTT sale %d: %s", i, m.Payload)
		}
		got[i] = *rep.Receipt
	}
	if len(got) != n {
		t.Fatalf("%d sales written, want %d", len(got), n)
	}
	// Hand some over (by QR, by discreet token, by order number), and scan
	// some of them twice.
	for i := 0; i < n; i += 7 {
		r := got[i]
		code := fmt.Sprintf("audit1:%d:%s", r.Seq, r.Short)
		switch {
		case r.Receipt.Buyer != nil && r.Receipt.Buyer.Token != "":
			code = r.Receipt.Buyer.Token
		case i%2 == 0:
			code = r.Receipt.Order
		}
		for k := 0; k < 1+i%3/2; k++ {
			st, b := postJSON(t, base+"/api/pickup/scan", `{"code":"`+code+`","by":"desk 1"}`)
			if want := []int{http.StatusCreated, http.StatusConflict}[k]; st != want {
				t.Fatalf("scan %d of sale %d: %d %s", k+1, i, st, b)
			}
		}
	}
	// Every label printed. What the box shows or sends about its sales
	// (MQTT, the export, the print queue, the pickup queue, metrics)
	// names no discreet buyer, and does name the others (so the search
	// is real).
	waitLabels(t, base)
	where := map[string]string{"mqtt": heard.String()}
	for name, path := range map[string]string{"export": "/api/receipts", "print queue": "/api/printers/counter/jobs?limit=1000",
		"pickup queue": "/api/pickup?limit=1000", "metrics": "/metrics", "report": "/api/receipts/report"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %s", path, resp.Status)
		}
		where[name] = string(b)
	}
	for i := 0; i < n; i += 3 { // the discreet sales
		for _, mark := range []string{fmt.Sprintf(`Number%d"`, i), fmt.Sprintf(`Name%d"`, i), fmt.Sprintf("buyer%d@", i), fmt.Sprintf("+49 151 %07d", i)} {
			for name, text := range where {
				if strings.Contains(text, mark) {
					t.Fatalf("%s holds %s of discreet sale %d", name, mark, i)
				}
			}
		}
	}
	if !strings.Contains(where["mqtt"], "/receipts/new/reply/pos-0015 ") || !strings.Contains(where["mqtt"], "/pickup/handover ") {
		t.Fatalf("the listener heard no replies or hand-overs:\n%.2000s", where["mqtt"])
	}
	if !strings.Contains(where["export"], `Number1\"`) || !strings.Contains(where["pickup queue"], `Number1"`) {
		t.Fatal("the export or the pickup queue lacks a buyer who did not ask for discretion")
	}
	// Then stop the agent.
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
		p.done <- nil
	case <-time.After(10 * time.Second):
		t.Fatal("agent did not stop")
	}
	logText := p.log.String()
	// The log speaks of discreet sales (their hand-overs and refusals),
	// so the audit has lines to judge.
	if !strings.Contains(logText, "order="+got[0].Receipt.Order+" ") || !strings.Contains(logText, "second hand-over refused") {
		t.Fatalf("the agent's log says nothing about discreet sale %s:\n%s", got[0].Receipt.Order, logText)
	}
	dir := t.TempDir()
	logFile := filepath.Join(dir, "agent.log")
	os.WriteFile(logFile, []byte(logText), 0o644)

	out, errOut, code := auditCLI(t, cfg, data, logFile)
	if code != 0 || out != "" {
		t.Fatalf("audit of a clean run: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "1000 sales (334 discreet)") || !strings.Contains(errOut, ": 0 finding(s)") {
		t.Fatalf("audit summary: %s", errOut)
	}

	// Plant a discreet buyer in a copy of a real log line about the sale.
	disc := got[21].Receipt // discreet, and handed over: the log names its order
	var line string
	for _, l := range strings.Split(logText, "\n") {
		if strings.Contains(l, "order="+disc.Order) || strings.Contains(l, fmt.Sprintf("receipt-audit1-%d", disc.Seq)) {
			line = l
			break
		}
	}
	if line == "" {
		t.Fatalf("no log line about discreet sale %s", disc.Order)
	}
	planted := logText + line + ` buyer.name="Buyer Number21"` + "\n"
	bad := filepath.Join(dir, "planted.log")
	os.WriteFile(bad, []byte(planted), 0o644)
	lineNo := strings.Count(planted, "\n")
	out, errOut, code = auditCLI(t, cfg, data, logFile, bad)
	want := fmt.Sprintf(`%s:%d: discreet sale %d (order %s): the log line holds a buyer field buyer.name="Bu********" (14 characters)`, bad, lineNo, disc.Seq, disc.Order)
	if code != 1 || strings.TrimSpace(out) != want || strings.Contains(out, "Number21") {
		t.Fatalf("audit of the planted line: exit %d\nstdout:\n%s\nwant:\n%s\nstderr:\n%s", code, out, want, errOut)
	}
}

// waitLabels waits until every pickup label left the outbox for the
// printer's queue.
func waitLabels(t *testing.T, base string) {
	t.Helper()
	testutil.WaitFor(t, 60*time.Second, "every pickup label handed to the printer queue", func() bool {
		resp, err := http.Get(base + "/api/status")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var s struct {
			Sections struct {
				Pickup struct {
					Backlog int `json:"backlog"`
				} `json:"pickup-labels"`
			} `json:"sections"`
		}
		return json.NewDecoder(resp.Body).Decode(&s) == nil && s.Sections.Pickup.Backlog == 0
	})
}
