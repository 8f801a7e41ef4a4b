package receipts

import (
	"bufio"
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
	f.Fuzz(func(t *testing.T, b []byte) {
		var o Order
		if json.Unmarshal(b, &o) != nil {
			return
		}
		if o.Validate("EUR") == nil {
			var sum int64
			for _, it := range o.Items {
				sum += it.Qty * it.Price
			}
			if sum != o.Total || o.ClientID == "" {
				t.Fatalf("accepted a bad order %+v", o)
			}
		}
	})
}
