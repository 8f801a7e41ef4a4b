package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/creack/pty"

	"fieldkit/internal/mqtttest"
	"fieldkit/internal/testutil"
	"fieldkit/sync/receipts"
)

// postJSON posts body to url and returns the status and the answer.
func postJSON(t *testing.T, url, body string) (int, []byte) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// sell posts a sale and returns its receipt.
func sell(t *testing.T, base, body string) receipts.Receipt {
	t.Helper()
	code, b := postJSON(t, base+"/api/receipts", body)
	if code != http.StatusCreated {
		t.Fatalf("sale answered %d: %s", code, b)
	}
	var r receipts.Receipt
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func pickupQueue(t *testing.T, base string) receipts.PickupQueue {
	t.Helper()
	resp, err := http.Get(base + "/api/pickup")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var q receipts.PickupQueue
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&q) != nil {
		t.Fatalf("GET /api/pickup: %s", resp.Status)
	}
	return q
}

// A scanner in serial mode on a pseudo-terminal hands an order over; a
// second scan of it from the page's API is refused with 409, when and by
// whom, and raises the alert on MQTT; an unknown code says so; the
// discreet sale's pickup view and MQTT payloads name no buyer.
func TestScannerHandsOverAndSecondScanIsRefused(t *testing.T) {
	master, slave, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	defer slave.Close()
	mqttAddr := mqtttest.FreePort(t)
	cfg := writeConfig(t, fmt.Sprintf("box: desk\nboard: sim\nscanners:\n  - {name: desk1, mode: serial, device: %s, baud: 9600}\n", slave.Name()))
	p := startAgent(t, nil, "--config", cfg, "--mqtt-listen", mqttAddr)
	p.waitHealthy(t, 10*time.Second)
	base := "http://" + p.http
	obs := mqtttest.Connect(t, "tcp://"+mqttAddr, "observer")
	alerts := obs.Subscribe("fieldkit/desk/pickup/#")

	sale := sell(t, base, `{"client_id":"pos1-1","order":"A-1042","items":[{"sku":"TEE","qty":2,"price":2500}],"total":5000,"currency":"EUR","pay":"card","buyer":{"name":"Sam Rivers","email":"sam@example.com"}}`)
	disc := sell(t, base, `{"client_id":"pos1-2","order":"A-1043","items":[{"sku":"CAP","qty":1,"price":1500}],"total":1500,"currency":"EUR","pay":"cash","buyer":{"name":"Dana Quill","phone":"+4915100000"},"discreet":true}`)

	testutil.WaitFor(t, 10*time.Second, "scanner desk1 open", func() bool {
		resp, err := http.Get(base + "/api/status")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var s struct {
			Sections struct {
				Scanners []struct {
					Open bool `json:"open"`
				} `json:"scanners"`
			} `json:"sections"`
		}
		return json.NewDecoder(resp.Body).Decode(&s) == nil && len(s.Sections.Scanners) == 1 && s.Sections.Scanners[0].Open
	})
	// The label's QR, as the scanner sends it.
	if _, err := fmt.Fprintf(master, "desk:%d:%s\r\n", sale.Seq, sale.Short); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, "A-1042 handed over by the scanner", func() bool {
		q := pickupQueue(t, base)
		for _, o := range q.Orders {
			if o.Order == "A-1042" && o.HandedOver != nil {
				return o.HandedOver.By == "scanner:desk1"
			}
		}
		return false
	})
	mqtttest.Await(t, alerts, 5*time.Second, "hand-over event", func(m mqtttest.Msg) bool {
		return strings.HasSuffix(m.Topic, "/pickup/handover") && strings.Contains(m.Payload, `"order":"A-1042"`)
	})

	// The same label again, typed on the page: refused, loudly.
	code, b := postJSON(t, base+"/api/pickup/scan", fmt.Sprintf(`{"code":"desk:%d:%s","by":"Lee"}`, sale.Seq, sale.Short))
	var ref receipts.Refused
	if code != http.StatusConflict || json.Unmarshal(b, &ref) != nil || ref.Already == nil || ref.Already.By != "scanner:desk1" || ref.Already.At.IsZero() {
		t.Fatalf("second scan: %d %s", code, b)
	}
	mqtttest.Await(t, alerts, 5*time.Second, "alert on the second scan", func(m mqtttest.Msg) bool {
		return strings.HasSuffix(m.Topic, "/pickup/alert") && strings.Contains(m.Payload, `"handed_over_by":"scanner:desk1"`) && strings.Contains(m.Payload, `"by":"Lee"`)
	})
	if code, b := postJSON(t, base+"/api/pickup/scan", `{"code":"desk:99:deadbeef"}`); code != http.StatusNotFound || !bytes.Contains(b, []byte("unknown code")) {
		t.Fatalf("unknown code: %d %s", code, b)
	}

	// The discreet sale: its token from the receipt, scanned from the page.
	token := disc.Receipt.Buyer.Token
	code, b = postJSON(t, base+"/api/pickup/scan", `{"code":"`+token+`"}`)
	var res receipts.ScanResult
	if code != http.StatusCreated || bytes.Contains(b, []byte("Dana")) || json.Unmarshal(b, &res) != nil || !res.Pickup.Discreet || res.Pickup.Buyer != "" {
		t.Fatalf("discreet hand-over: %d %s", code, b)
	}
	m := mqtttest.Await(t, alerts, 5*time.Second, "discreet hand-over event", func(m mqtttest.Msg) bool {
		return strings.Contains(m.Payload, `"order":"A-1043"`)
	})
	if strings.Contains(m.Payload, "Dana") || strings.Contains(m.Payload, "4915") {
		t.Fatalf("a discreet hand-over's MQTT payload names the buyer: %s", m.Payload)
	}
	q := pickupQueue(t, base)
	if q.HandedOver != 2 || q.Waiting != 0 || q.Refused == nil || q.Refused.By != "Lee" {
		t.Fatalf("queue %+v", q)
	}
	raw, _ := json.Marshal(q)
	if bytes.Contains(raw, []byte("Dana")) || !bytes.Contains(raw, []byte("Sam Rivers")) {
		t.Fatalf("queue: the discreet buyer is named, or the other is not: %s", raw)
	}
}

// The crew page's scan box, in Chromium: a label code typed the way a
// keyboard-wedge scanner types it (ending with Enter) hands the order
// over, and the queue shows it; the same code again is refused loudly:
// the page flashes, sounds and says when and by whom it was handed over.
// The page breaks none of its Content-Security-Policy doing so.
func TestBrowserScanToHandOver(t *testing.T) {
	ctx, plog := browser(t, phone)
	cfg := writeConfig(t, "box: desk\nboard: sim\n")
	p := startAgent(t, nil, "--config", cfg, "--mqtt-listen", mqtttest.FreePort(t))
	p.waitHealthy(t, 10*time.Second)
	base := "http://" + p.http
	sale := sell(t, base, `{"client_id":"pos1-1","order":"A-1042","items":[{"sku":"TEE","qty":2,"price":2500}],"total":5000,"currency":"EUR","pay":"card","buyer":{"name":"Sam Rivers"}}`)
	code := fmt.Sprintf("desk:%d:%s", sale.Seq, sale.Short)

	step(t, ctx, "open the page", chromedp.Navigate(base+"/"))
	waitJS(t, ctx, "the live stream", `document.getElementById("stream").textContent === "live"`)
	waitJS(t, ctx, "A-1042 waiting in the pickup queue", `document.querySelector('#pickup-list li[data-order="A-1042"].waiting') !== null`)
	step(t, ctx, "scan the label into the scan box", chromedp.SendKeys(chromedp.CSS("#scan-code"), code+"\r"))
	waitJS(t, ctx, "the hand-over shown", `document.getElementById("scan-result").textContent.startsWith("Handed over: order A-1042 · Sam Rivers · 2 × TEE")`)
	waitJS(t, ctx, "A-1042 handed over in the queue", `(() => { const li = document.querySelector('#pickup-list li[data-order="A-1042"]'); return li && li.classList.contains("handed-over") && li.textContent.includes("by crew page"); })()`)
	if flash, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById("pickup-flash").hidden`)); !flash {
		t.Fatal("the refusal flash shows after a good hand-over")
	}
	q := pickupQueue(t, base)
	if len(q.Orders) != 1 || q.Orders[0].HandedOver == nil || q.Orders[0].HandedOver.By != "crew page" {
		t.Fatalf("the agent's queue after the page's scan: %+v", q)
	}

	step(t, ctx, "scan the same label again", chromedp.SendKeys(chromedp.CSS("#scan-code"), code+"\r"))
	waitJS(t, ctx, "the loud refusal", `(() => { const f = document.getElementById("pickup-flash");
  return !f.hidden && f.textContent.startsWith("ALREADY HANDED OVER: order A-1042 at ") && f.textContent.includes(" by crew page")
    && document.body.classList.contains("refused") && Number(document.body.dataset.beeps) >= 2; })()`)
	// The time shown is the hand-over's, in the page's time zone.
	waitJS(t, ctx, "the hand-over's time in the flash", `(() => { const d = new Date(Date.parse(`+jsString(q.Orders[0].HandedOver.At)+`)), p = (n) => String(n).padStart(2, "0");
  return document.getElementById("pickup-flash").textContent.includes(" at " + p(d.getHours()) + ":" + p(d.getMinutes()) + ":" + p(d.getSeconds()) + " by crew page"); })()`)
	step(t, ctx, "scan an unknown code", chromedp.SendKeys(chromedp.CSS("#scan-code"), "desk:77:00000000\r"))
	waitJS(t, ctx, "unknown code said", `document.getElementById("scan-result").textContent.startsWith("Unknown code: desk:77:00000000")`)
	noCSPViolations(t, ctx, plog)
}
