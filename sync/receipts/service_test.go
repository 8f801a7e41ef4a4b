package receipts

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"fieldkit/internal/clock"
	"fieldkit/internal/health"
	"fieldkit/internal/mqttc"
)

type fakeMQTT struct {
	mu       sync.Mutex
	handlers map[string]mqttc.Handler
	pubs     map[string][]byte
}

func (f *fakeMQTT) Handle(filter string, h mqttc.Handler) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.handlers[filter] = h
	return nil
}

func (f *fakeMQTT) Publish(_ context.Context, topic string, _ byte, _ bool, payload []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pubs[topic] = payload
	return nil
}

func (f *fakeMQTT) SetRetained(topic string, payload []byte) { f.Publish(nil, topic, 1, true, payload) }
func (f *fakeMQTT) Prefix() string                           { return "fieldkit/box1" }

func newService(t *testing.T, m MQTT) (*Service, *httptest.Server, *health.Registry) {
	t.Helper()
	hr := health.NewRegistry()
	s, err := New(Config{}, Deps{Box: "box1", DataDir: t.TempDir(), Clock: clock.NewFake(t0),
		Sync: SyncFunc(func() bool { return true }), BootID: "b", MQTT: m, Health: hr})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(func() { srv.Close(); s.Close() })
	return s, srv, hr
}

const goodOrder = `{"client_id":"pos1-0042","order":"A-1042","items":[{"sku":"TEE-BLK-M","qty":1,"price":2500}],"total":2500,"currency":"EUR","pay":"card","buyer":{"name":"Sam R."},"discreet":false}`

func post(t *testing.T, url, ct, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", url+"/api/receipts", strings.NewReader(body))
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestHTTPPostGetExport(t *testing.T) {
	s, srv, _ := newService(t, nil)
	code, body := post(t, srv.URL, "application/json", goodOrder)
	if code != 201 {
		t.Fatalf("%d %s", code, body)
	}
	var rc Receipt
	if err := json.Unmarshal([]byte(body), &rc); err != nil {
		t.Fatal(err)
	}
	if rc.Seq != 1 || rc.Receipt.Order != "A-1042" || rc.Short != rc.Hash[:8] || rc.Receipt.Buyer.Name != "Sam R." {
		t.Fatalf("%+v", rc)
	}
	code, body2 := post(t, srv.URL, "application/json", goodOrder)
	if code != 200 || !strings.Contains(body2, `"replay": true`) {
		t.Fatalf("retry: %d %s", code, body2)
	}
	resp, err := http.Get(srv.URL + "/api/receipts/1")
	if err != nil {
		t.Fatal(err)
	}
	var got Receipt
	json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if got.Signed != rc.Signed {
		t.Fatalf("get: %+v", got)
	}
	for _, p := range []string{"/api/receipts/0", "/api/receipts/x"} {
		resp, _ := http.Get(srv.URL + p)
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Errorf("%s: %d", p, resp.StatusCode)
		}
	}
	resp, _ = http.Get(srv.URL + "/api/receipts/7")
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("missing: %d", resp.StatusCode)
	}
	for i := 2; i <= 4; i++ {
		post(t, srv.URL, "", strings.Replace(goodOrder, "pos1-0042", fmt.Sprintf("pos1-%d", i), 1))
	}
	resp, _ = http.Get(srv.URL + "/api/receipts?after=1")
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Errorf("content type %q", ct)
	}
	sc := bufio.NewScanner(resp.Body)
	var seqs []uint64
	for sc.Scan() {
		s, err := ParseLine(sc.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, s.Seq)
	}
	resp.Body.Close()
	if fmt.Sprint(seqs) != "[2 3 4]" {
		t.Fatalf("export after=1: %v", seqs)
	}
	resp, _ = http.Get(srv.URL + "/api/receipts/report?since=2h")
	var z ZReport
	json.NewDecoder(resp.Body).Decode(&z)
	resp.Body.Close()
	if z.Count != 4 || z.Total != 10000 || z.FirstSeq != 1 || z.LastSeq != 4 || len(z.BySKU) != 1 || z.BySKU[0].Qty != 4 || z.ByPay[0].Pay != "card" {
		t.Fatalf("report %+v", z)
	}
	_ = s
}

func TestHTTPBadInputWritesNothing(t *testing.T) {
	s, srv, _ := newService(t, nil)
	repl := func(old, new string) string { return strings.Replace(goodOrder, old, new, 1) }
	cases := []struct {
		name, ct, body string
		code           int
		msg            string
	}{
		{"malformed JSON", "application/json", `{"client_id":`, 400, "bad JSON"},
		{"unknown field", "", repl(`"pay"`, `"pai"`), 400, "unknown field"},
		{"trailing data", "", goodOrder + `{}`, 400, "trailing"},
		{"missing client_id", "", repl(`"client_id":"pos1-0042",`, ""), 400, "client_id: missing"},
		{"missing items", "", repl(`"items":[{"sku":"TEE-BLK-M","qty":1,"price":2500}],`, ""), 400, "items: missing"},
		{"missing currency", "", repl(`"currency":"EUR",`, ""), 400, "currency: missing"},
		{"missing pay", "", repl(`"pay":"card",`, ""), 400, "pay: missing"},
		{"missing sku", "", repl(`"sku":"TEE-BLK-M",`, ""), 400, "items[0].sku: missing"},
		{"negative quantity", "", repl(`"qty":1`, `"qty":-1`), 400, "items[0].qty"},
		{"zero quantity", "", repl(`"qty":1`, `"qty":0`), 400, "items[0].qty"},
		{"negative price", "", repl(`"price":2500`, `"price":-2500`), 400, "items[0].price"},
		{"totals do not add up", "", repl(`"total":2500`, `"total":2400`), 400, "does not add up"},
		{"unknown currency", "", repl(`"EUR"`, `"EUE"`), 400, "unknown currency"},
		{"another known currency", "", repl(`"EUR"`, `"USD"`), 422, "sells in EUR"},
		{"unknown payment", "", repl(`"card"`, `"iou"`), 400, "unknown payment"},
		{"client sets token", "", repl(`"name":"Sam R."`, `"token":"x"`), 400, "buyer.token"},
		{"control character", "", repl(`A-1042`, `A-10\u000742`), 400, "control character"},
		{"bad client_id", "", repl(`pos1-0042`, `pos1/0042`), 400, "client_id"},
		{"oversized body", "", repl(`"order":"A-1042"`, `"order":"`+strings.Repeat("x", MaxBody)+`"`), 413, "larger than"},
		{"non-UTF-8", "", repl(`Sam R.`, "Sam \xff"), 400, "UTF-8"},
		{"wrong content type", "text/plain", goodOrder, 415, "content type"},
		{"wrong type", "", repl(`"qty":1`, `"qty":"1"`), 400, "bad JSON"},
		{"missing price", "", repl(`,"price":2500`, ""), 400, "items[0].price: missing"},
		{"null price", "", repl(`"price":2500`, `"price":null`), 400, "items[0].price: missing"},
		{"missing qty", "", repl(`"qty":1,`, ""), 400, "items[0].qty: missing"},
		{"missing total", "", repl(`"total":2500,`, ""), 400, "total: missing"},
		{"missing order", "", repl(`"order":"A-1042",`, ""), 400, "order: missing"},
		{"duplicate key", "", repl(`"total":2500`, `"total":2500,"total":2400`), 400, `key \"total\" appears twice`},
		{"duplicate key in an item", "", repl(`"qty":1`, `"qty":1,"qty":1`), 400, `key \"qty\" appears twice`},
		{"lone high surrogate", "", repl(`Sam R.`, `Sam \ud800R.`), 400, `\ud800 at byte`},
		{"lone low surrogate", "", repl(`A-1042`, `A-\udc00`), 400, `\udc00 at byte`},
		{"high surrogate then a letter", "", repl(`Sam R.`, `Sam \ud800\u0041`), 400, "surrogate"},
		{"price past int64", "", repl(`"price":2500`, `"price":9223372036854775808`), 400, "items[0].price: number 9223372036854775808 is not a whole number"},
		{"fractional price", "", repl(`"price":2500`, `"price":25.5`), 400, "items[0].price: number 25.5 is not a whole number"},
		{"total past int64", "", repl(`"total":2500`, `"total":1e19`), 400, "total: number 1e19 is not a whole number"},
		{"price over the limit", "", repl(`"price":2500`, `"price":100000001`), 400, "items[0].price"},
		{"qty over the limit", "", repl(`"qty":1`, `"qty":100001`), 400, "items[0].qty"},
		{"two objects", "", goodOrder + goodOrder, 400, "trailing"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, body := post(t, srv.URL, tc.ct, tc.body)
			if code != tc.code || !strings.Contains(body, tc.msg) {
				t.Fatalf("%d %s; want %d containing %q", code, body, tc.code, tc.msg)
			}
		})
	}
	if h, _ := s.Ledger().Head(context.Background()); h.Seq != 0 {
		t.Fatalf("bad input wrote %d records", h.Seq)
	}
}

// A surrogate pair that is a real character is accepted and stored as
// that character.
func TestHTTPSurrogatePairAccepted(t *testing.T) {
	s, srv, _ := newService(t, nil)
	code, body := post(t, srv.URL, "", strings.Replace(goodOrder, `Sam R.`, `Sam \ud83d\ude00`, 1))
	if code != 201 {
		t.Fatalf("%d %s", code, body)
	}
	sg, err := s.Ledger().Get(context.Background(), 1)
	if err != nil || !strings.Contains(sg.Record, "Sam \U0001F600") {
		t.Fatalf("%v %s", err, sg.Record)
	}
}

// The body limit comes from the item and text limits: the largest order
// within them, in the longest spelling, is accepted (here about 500 KB,
// and a 125 KB one of plain SKUs); one byte more than MaxBody is not.
func TestHTTPLargestOrderAccepted(t *testing.T) {
	s, srv, _ := newService(t, nil)
	build := func(id, skuChar string, skuLen int) string {
		var b strings.Builder
		fmt.Fprintf(&b, `{"client_id":%q,"order":"%s","items":[`, id, strings.Repeat(skuChar, maxText))
		for i := 0; i < MaxItems; i++ {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `{"sku":"%s","qty":%d,"price":%d}`, strings.Repeat(skuChar, skuLen), MaxQty, MaxUnitPrice)
		}
		fmt.Fprintf(&b, `],"total":%d,"currency":"EUR","pay":"card","buyer":{"name":"%s","phone":"%s","email":"%s"}}`,
			int64(MaxItems)*MaxQty*MaxUnitPrice, strings.Repeat(skuChar, maxText), strings.Repeat(skuChar, maxText), strings.Repeat(skuChar, maxText))
		return b.String()
	}
	spellings := []struct{ name, char string }{
		{"ASCII", "x"}, {"UTF-8", "é"}, {"escaped", `\u00e9`}, {"surrogate pairs", `\ud83d\ude00`},
	}
	for i, sp := range spellings {
		body := build(fmt.Sprint("big-", i), sp.char, maxText)
		code, resp := post(t, srv.URL, "", body)
		if code != 201 {
			t.Fatalf("%s order of %d bytes: %d %.300s", sp.name, len(body), code, resp)
		}
		t.Logf("%s: order of %d bytes accepted (limit %d)", sp.name, len(body), MaxBody)
	}
	if h, _ := s.Ledger().Head(context.Background()); h.Seq != 4 {
		t.Fatalf("head %d", h.Seq)
	}
	over := build("big-9", "x", maxText)
	over = over[:len(over)-1] + `,"discreet":false` + strings.Repeat(" ", MaxBody-len(over)) + "}"
	if code, resp := post(t, srv.URL, "", over); code != 413 {
		t.Fatalf("%d bytes: %d %.200s", len(over), code, resp)
	}
}

// The same client_id: the same order again is a retry (200, the stored
// receipt), another order is a conflict (409 naming the stored seq) and
// nothing is written.
func TestHTTPClientIDConflict(t *testing.T) {
	s, srv, _ := newService(t, nil)
	if code, body := post(t, srv.URL, "", goodOrder); code != 201 {
		t.Fatalf("%d %s", code, body)
	}
	// Same order, other spacing and key order: a retry.
	var m map[string]any
	json.Unmarshal([]byte(goodOrder), &m)
	again, _ := json.MarshalIndent(m, "", "  ")
	code, body := post(t, srv.URL, "", string(again))
	if code != 200 || !strings.Contains(body, `"seq": 1,`) {
		t.Fatalf("retry: %d %s", code, body)
	}
	other := strings.NewReplacer(`"price":2500`, `"price":12000`, `"total":2500`, `"total":12000`).Replace(goodOrder)
	code, body = post(t, srv.URL, "", other)
	if code != 409 || !strings.Contains(body, `client_id: \"pos1-0042\" already names receipt seq 1, a different order`) {
		t.Fatalf("conflict: %d %s", code, body)
	}
	if h, _ := s.Ledger().Head(context.Background()); h.Seq != 1 {
		t.Fatalf("head %d", h.Seq)
	}
}

// The running turnover never overflows: a sale that would take it past
// 2^63-1 is refused with a 400 and nothing is written.
func TestTurnoverOverflowRefused(t *testing.T) {
	s, srv, _ := newService(t, nil)
	// Fast-forward the books before the first sale, as if some 4,600 of
	// the largest orders had been made: the writer reads the head row
	// when it takes its first append.
	l := s.Ledger()
	if _, err := l.db.Exec(`UPDATE head SET turnover = ?`, int64(9_223_372_036_854_775_807-1000)); err != nil {
		t.Fatal(err)
	}
	code, body := post(t, srv.URL, "", goodOrder)
	if code != 400 || !strings.Contains(body, "would take the ledger's turnover past 9223372036854775807") {
		t.Fatalf("%d %s", code, body)
	}
	if h, _ := l.Head(context.Background()); h.Seq != 0 {
		t.Fatalf("head %d", h.Seq)
	}
	small := strings.NewReplacer("pos1-0042", "pos1-0043", `"price":2500`, `"price":1000`, `"total":2500`, `"total":1000`).Replace(goodOrder)
	if code, body := post(t, srv.URL, "", small); code != 201 || !strings.Contains(body, `\"turnover\":9223372036854775807`) {
		t.Fatalf("%d %s", code, body)
	}
}

func TestMQTTNewReceipt(t *testing.T) {
	m := &fakeMQTT{handlers: map[string]mqttc.Handler{}, pubs: map[string][]byte{}}
	s, _, _ := newService(t, m)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	var h mqttc.Handler
	deadline := time.Now().Add(5 * time.Second)
	for h == nil && time.Now().Before(deadline) {
		m.mu.Lock()
		h = m.handlers["fieldkit/box1/receipts/new"]
		m.mu.Unlock()
		time.Sleep(time.Millisecond)
	}
	if h == nil {
		t.Fatal("no handler on receipts/new")
	}
	if err := h(ctx, mqttc.Message{Topic: "fieldkit/box1/receipts/new", Payload: []byte(goodOrder)}); err != nil {
		t.Fatal(err)
	}
	var rep MQTTReply
	json.Unmarshal(m.pubs["fieldkit/box1/receipts/new/reply/pos1-0042"], &rep)
	if rep.Receipt == nil || rep.Receipt.Seq != 1 {
		t.Fatalf("reply %+v", rep)
	}
	bad := strings.Replace(goodOrder, `"total":2500`, `"total":1`, 1)
	if err := h(ctx, mqttc.Message{Topic: "fieldkit/box1/receipts/new", Payload: []byte(strings.Replace(bad, "0042", "0043", 1))}); err != nil {
		t.Fatal(err)
	}
	json.Unmarshal(m.pubs["fieldkit/box1/receipts/new/reply/pos1-0043"], &rep)
	if rep.Code != 400 || !strings.Contains(rep.Error, "does not add up") {
		t.Fatalf("reply %+v", rep)
	}
	if err := h(ctx, mqttc.Message{Topic: "fieldkit/box1/receipts/new", Payload: []byte(`{"nope":1}`)}); err == nil {
		t.Fatal("garbage accepted")
	}
	if hd, _ := s.Ledger().Head(ctx); hd.Seq != 1 {
		t.Fatalf("head %d", hd.Seq)
	}
}

func TestChecks(t *testing.T) {
	s, srv, _ := newService(t, nil)
	post(t, srv.URL, "", goodOrder)
	for _, c := range s.Checks() {
		r := c.Run(context.Background())
		if r.Status != "ok" {
			t.Errorf("%s: %+v", c.Name, r)
		}
	}
	if filepath.Base(s.Config().KeyFile) != "receipts.key" {
		t.Fatal(s.Config().KeyFile)
	}
}

func FuzzParseLine(f *testing.F) {
	f.Add([]byte(`{"seq":1,"record":"{\"v\":1}","sig":"AAAA","hash":"00"}`))
	f.Add([]byte(`{"seq":1}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseLine(b)
		if err != nil {
			return
		}
		c := NewChain("box1", make([]byte, 32))
		c.Check(s) // must not panic
	})
}

func FuzzOrder(f *testing.F) {
	f.Add([]byte(goodOrder))
	f.Add([]byte(`{"items":[{"qty":9223372036854775807,"price":9223372036854775807}]}`))
	f.Add([]byte(`{"client_id":"a","client_id":"b"}`))
	f.Add([]byte(`{"order":"\ud800","x":[{"y":1,"y":2}]}`))
	f.Add([]byte(`{"order":"\ud83d\ude00\\ud800"}`))
	f.Add([]byte(`[{"a":1},{"a":1}]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if CheckJSON(b) == nil {
			if !json.Valid(b) {
				t.Fatalf("CheckJSON accepted invalid JSON %q", b)
			}
			var v any
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.UseNumber() // a number past float64 is still JSON
			if err := dec.Decode(&v); err != nil {
				t.Fatalf("CheckJSON accepted %q: %v", b, err)
			}
			if bytes.Contains(mustMarshal(v), []byte(`\ufffd`)) && !bytes.Contains(b, []byte(`\ufffd`)) && !bytes.Contains(b, []byte("\uFFFD")) && !bytes.ContainsRune(b, '\uFFFD') {
				t.Fatalf("CheckJSON let a replacement character in: %q", b)
			}
		}
		o, err := ParseOrder(b)
		if err != nil {
			return
		}
		if o.Validate("EUR") == nil {
			var sum int64
			for _, it := range o.Items {
				sum += it.Qty * it.Price
			}
			if sum != o.Total || o.ClientID == "" || o.Currency == "" || o.Pay == "" {
				t.Fatalf("accepted a bad order %+v", o)
			}
		}
	})
}

func mustMarshal(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}
