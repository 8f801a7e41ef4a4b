package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"fieldkit/internal/mqtttest"
	"fieldkit/internal/testutil"
)

// In the demo a sale prints its pickup label: the job carries the
// receipt's id, and posting the same sale again prints nothing more.
func TestSalePrintsPickupLabel(t *testing.T) {
	p := startAgent(t, nil, "--mqtt-listen", mqtttest.FreePort(t))
	p.waitHealthy(t, 5*time.Second)
	sale := []byte(`{"client_id":"pos1-0042","order":"A-1042","items":[{"sku":"TEE-BLK-M","qty":2,"price":2500}],"total":5000,"currency":"EUR","pay":"card","buyer":{"name":"Sam R."}}`)
	for i := 0; i < 2; i++ {
		resp, err := http.Post("http://"+p.http+"/api/receipts", "application/json", bytes.NewReader(sale))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Fatalf("sale answered %s", resp.Status)
		}
	}
	var job struct {
		State string `json:"state"`
		Order string `json:"order"`
		Buyer string `json:"buyer"`
		Label struct {
			Elements []map[string]any `json:"elements"`
		} `json:"label"`
	}
	testutil.WaitFor(t, 10*time.Second, "pickup label printed", func() bool {
		resp, err := http.Get("http://" + p.http + "/api/jobs/receipt-demo-1")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		return resp.StatusCode == 200 && json.NewDecoder(resp.Body).Decode(&job) == nil && job.State == "done"
	})
	var texts []string
	for _, e := range job.Label.Elements {
		if s, ok := e["text"].(string); ok {
			texts = append(texts, s)
		}
	}
	// The queue shows the pickup desk what it looks for.
	if job.Order != "A-1042" || job.Buyer != "Sam R." {
		t.Fatalf("the sale's job shows order %q buyer %q, want A-1042 and Sam R.", job.Order, job.Buyer)
	}
	joined := strings.Join(texts, "\n")
	for _, want := range []string{"A-1042", "Sam R.", "Receipt #1"} {
		if !strings.Contains(joined, want) {
			t.Fatalf("label lacks %q:\n%s", want, joined)
		}
	}
	resp, err := http.Get("http://" + p.http + "/api/jobs/receipt-demo-2")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("a replayed sale queued a second label: %s", resp.Status)
	}

	// The end-of-show report prints as a slip from the verified ledger.
	resp, err = http.Post("http://"+p.http+"/api/receipts/report/print", "application/json", strings.NewReader(`{"printer":"counter"}`))
	if err != nil {
		t.Fatal(err)
	}
	var zjob struct {
		ID    string `json:"id"`
		Label struct {
			Elements []map[string]any `json:"elements"`
		} `json:"label"`
	}
	err = json.NewDecoder(resp.Body).Decode(&zjob)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("report print: %s %v", resp.Status, err)
	}
	if first, _ := zjob.Label.Elements[0]["text"].(string); !strings.HasPrefix(first, "Z REPORT") {
		t.Fatalf("slip starts with %q", first)
	}
	var found bool
	for _, e := range zjob.Label.Elements {
		if s, _ := e["text"].(string); strings.HasPrefix(s, "receipts  1 (seq 1-1)") {
			found = true
		}
	}
	if !found {
		t.Fatalf("slip lacks the receipt count: %+v", zjob.Label.Elements)
	}
}
