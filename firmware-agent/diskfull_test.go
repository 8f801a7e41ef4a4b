package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"fieldkit/internal/mqtttest"
)

// smallDisk mounts a tmpfs of size MB for the test, or skips the test
// saying why: mounting needs root (CI runs the suite as root).
func smallDisk(t *testing.T, sizeMB int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: the disk-full test mounts a small tmpfs, which needs root (run the suite as root, as CI does)")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%dm,mode=0755", sizeMB), "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("skipped: cannot mount a tmpfs here (%v: %s); the disk-full test needs a machine where root may mount", err, bytes.TrimSpace(out))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// fill writes a file until the disk says no space is left.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return
			}
			t.Fatal(err)
		}
	}
}

type saleAnswer struct {
	code int
	body string
}

func postSale(t *testing.T, p *agentProc, id string) saleAnswer {
	t.Helper()
	sale := fmt.Sprintf(`{"client_id":%q,"order":"A-1","items":[{"sku":"TEE","qty":1,"price":2500}],"total":2500,"currency":"EUR","pay":"card"}`, id)
	resp, err := http.Post("http://"+p.http+"/api/receipts", "application/json", strings.NewReader(sale))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return saleAnswer{resp.StatusCode, string(b)}
}

func jobState(t *testing.T, p *agentProc, id string) (state, errText string) {
	t.Helper()
	resp, err := http.Get("http://" + p.http + "/api/jobs/" + id)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var j struct {
		State string `json:"state"`
		Error string `json:"error"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&j)
	return j.State, j.Error
}

// The data dir on a small disk that fills up: sales are refused with 507
// and a plain message, the alarm goes out on receipts/alarm and on the
// status page, no print job is left printing, the log is not flooded; and
// once space is freed, sales and printing resume by themselves.
func TestDiskFullRefusesCleanlyAndRecovers(t *testing.T) {
	mnt := smallDisk(t, 24)
	mqttAddr := mqtttest.FreePort(t)
	p := startAgent(t, nil, "--mqtt-listen", mqttAddr, "--data", filepath.Join(mnt, "data"))
	p.waitHealthy(t, 10*time.Second)
	cl := mqtttest.Connect(t, "tcp://"+mqttAddr, "desk")
	alarms := cl.Subscribe("fieldkit/demo/receipts/alarm")

	if a := postSale(t, p, "pos-1"); a.code/100 != 2 {
		t.Fatalf("first sale: %d %s", a.code, a.body)
	}
	waitUntil(t, 10*time.Second, "first pickup label printed", func() bool { s, _ := jobState(t, p, "receipt-demo-1"); return s == "done" })

	filler := filepath.Join(mnt, "filler")
	fill(t, filler)

	// Refused, with 507 and a message a person understands.
	var refused saleAnswer
	waitUntil(t, 10*time.Second, "a sale refused with 507", func() bool {
		refused = postSale(t, p, "pos-2")
		return refused.code == http.StatusInsufficientStorage
	})
	if !strings.Contains(refused.body, "disk") || !strings.Contains(refused.body, "full") {
		t.Fatalf("refusal says %s", refused.body)
	}
	m := mqtttest.Await(t, alarms, 10*time.Second, "disk alarm at 100", func(m mqtttest.Msg) bool {
		return strings.Contains(m.Payload, `"level":100`)
	})
	t.Logf("alarm: %s", m.Payload)
	waitUntil(t, 10*time.Second, "part receipts failed on the status page", func() bool {
		pt := p.part(t, "receipts")
		return pt.State == "failed" && strings.Contains(pt.Reason, "full")
	})

	// A print job asked for now is refused up front (507) or, once in
	// the queue, ends failed "disk full" or waits queued: never stuck
	// printing.
	job := `{"id":"full-1","label":{"elements":[{"text":"FULL"},{"cut":true}]}}`
	resp, err := http.Post("http://"+p.http+"/api/printers/counter/jobs", "application/json", strings.NewReader(job))
	if err != nil {
		t.Fatal(err)
	}
	jb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	queued := resp.StatusCode/100 == 2
	if !queued && (resp.StatusCode != http.StatusInsufficientStorage || !strings.Contains(string(jb), "disk full")) {
		t.Fatalf("print job on a full disk: %s %s", resp.Status, jb)
	}
	t.Logf("print job on a full disk: %s %s", resp.Status, bytes.TrimSpace(jb))

	// Space is freed: everything resumes without a restart.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	mqtttest.Await(t, alarms, 15*time.Second, "alarm cleared", func(m mqtttest.Msg) bool { return strings.Contains(m.Payload, `"level":0`) })
	if a := postSale(t, p, "pos-3"); a.code/100 != 2 {
		t.Fatalf("sale after space was freed: %d %s", a.code, a.body)
	}
	waitUntil(t, 15*time.Second, "pickup label of the new sale printed", func() bool {
		resp, err := http.Get("http://" + p.http + "/api/printers/counter/jobs")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var jobs []struct{ ID, State string }
		_ = json.NewDecoder(resp.Body).Decode(&jobs)
		for _, j := range jobs {
			if j.State == "printing" {
				return false
			}
		}
		for _, j := range jobs {
			if strings.HasPrefix(j.ID, "receipt-demo-") && j.ID != "receipt-demo-1" && j.State == "done" {
				return true
			}
		}
		return false
	})
	if queued {
		waitUntil(t, 15*time.Second, "the job queued on the full disk printed", func() bool { s, _ := jobState(t, p, "full-1"); return s == "done" })
	}
	if n := strings.Count(p.log.String(), "cannot rollback"); n > 0 {
		t.Fatalf("%d 'cannot rollback' lines in the log", n)
	}
	if pt := p.part(t, "receipts"); pt.State != "ok" {
		t.Fatalf("part receipts after recovery: %+v", pt)
	}
}
