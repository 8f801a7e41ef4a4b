package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"fieldkit/internal/mqtttest"
	"fieldkit/printer/fake"
	"fieldkit/printer/queue"
)

// TestKilledAgentPrintsEveryJobOnce is the labels issue's restart promise
// on the real binary: 100 jobs queued in firmware-agent while its serial
// printer (the fake, on a pseudo-terminal) is unplugged, the agent killed
// with SIGKILL and started again on the same data dir: every job prints
// exactly once and none is uncertain, since none was being written.
// Then an agent is killed in the middle of printing: every job ends done
// or uncertain, none is printed twice.
func TestKilledAgentPrintsEveryJobOnce(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(dir, "printer-counter")
	fp, err := fake.New(&fake.Opts{Lang: fake.ESCPOS, WidthDots: 576, Baud: 921600, Link: link, NoRender: true})
	if err != nil {
		t.Fatal(err)
	}
	defer fp.Close()
	if _, err := fp.OpenPTY(); err != nil {
		t.Fatal(err)
	}
	fp.Unplug()
	cfg := writeConfig(t, fmt.Sprintf(`box: killtest
board: sim
mqtt: {listen: %s}
printers:
  counter: {language: escpos, width_dots: 576, transport: serial, path: %s, baud: 921600, status_timeout: 150ms, poll_interval: 20ms}
`, mqtttest.FreePort(t), link))
	data := filepath.Join(dir, "data")
	start := func() *agentProc {
		p := startAgent(t, nil, "--config", cfg, "--data", data)
		p.waitHealthy(t, 10*time.Second)
		return p
	}
	post := func(p *agentProc, id, text string) int {
		t.Helper()
		body, _ := json.Marshal(map[string]any{"id": id, "label": json.RawMessage(fmt.Sprintf(`{"elements":[{"text":%q},{"cut":true}]}`, text))})
		resp, err := http.Post("http://"+p.http+"/api/printers/counter/jobs", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	jobs := func(p *agentProc, st queue.State) []queue.Job {
		t.Helper()
		resp, err := http.Get("http://" + p.http + "/api/printers/counter/jobs?limit=1000&state=" + string(st))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var js []queue.Job
		if err := json.NewDecoder(resp.Body).Decode(&js); err != nil {
			t.Fatal(err)
		}
		return js
	}
	kill := func(p *agentProc) {
		p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
		p.done <- nil // for the cleanup's wait
	}
	wait := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(60 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	printed := func() map[string]int {
		out := map[string]int{}
		for _, l := range fp.Labels() {
			for _, tx := range l.Texts() {
				out[tx]++
			}
		}
		return out
	}

	const n = 100
	a := start()
	for i := range n {
		if code := post(a, fmt.Sprintf("job-%03d", i), fmt.Sprintf("JOB %03d", i)); code != http.StatusCreated {
			t.Fatalf("job %d: %d, want 201", i, code)
		}
	}
	if code := post(a, "job-007", "JOB 007"); code != http.StatusOK {
		t.Fatalf("the same id again: %d, want 200 (one job)", code)
	}
	kill(a)

	fp.Plug()
	b := start()
	wait("100 jobs done", func() bool { return len(jobs(b, queue.Done)) == n })
	if u := jobs(b, queue.Uncertain); len(u) != 0 {
		t.Fatalf("%d uncertain jobs after a kill with nothing being written", len(u))
	}
	texts := printed()
	for i := range n {
		if c := texts[fmt.Sprintf("JOB %03d", i)]; c != 1 {
			t.Fatalf("JOB %03d printed %d times, want once", i, c)
		}
	}
	if fp.Printed() != n {
		t.Fatalf("the printer cut %d labels, want %d", fp.Printed(), n)
	}

	// Killed while printing.
	for i := range n {
		post(b, fmt.Sprintf("second-%03d", i), fmt.Sprintf("SECOND %03d", i))
	}
	wait("printing to be under way", func() bool { return fp.Printed() >= n+20 })
	kill(b)
	atKill := fp.Printed() - n
	c := start()
	wait("the queue to drain", func() bool {
		return len(jobs(c, queue.Queued)) == 0 && len(jobs(c, queue.Printing)) == 0
	})
	done, unc := jobs(c, queue.Done), jobs(c, queue.Uncertain)
	t.Logf("killed after %d of %d labels: %d done, %d uncertain", atKill, n, len(done)-n, len(unc))
	if atKill >= n {
		t.Fatal("the agent finished before it was killed; the kill proved nothing")
	}
	if len(done)+len(unc) != 2*n || len(unc) > 1 {
		t.Fatalf("%d done + %d uncertain; want all %d accounted for and at most the one being written uncertain", len(done), len(unc), 2*n)
	}
	texts = printed()
	for _, j := range done {
		if txt := strings.Replace(strings.ToUpper(j.ID), "-", " ", 1); texts[txt] != 1 {
			t.Errorf("done job %s printed %d times, want once", j.ID, texts[txt])
		}
	}
	for txt, k := range texts {
		if k > 1 {
			t.Errorf("%q printed %d times", txt, k)
		}
	}
}
