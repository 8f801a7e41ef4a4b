package service

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"fieldkit/internal/bus"
	"fieldkit/internal/httpapi"
	"fieldkit/printer/fake"
	"fieldkit/printer/label"
	"fieldkit/printer/queue"
)

// TestAgentProcess is not a test: it is the agent process the kill test
// starts (and kills) when FIELDKIT_PRINTER_AGENT is set. It serves the
// printer API on loopback and writes its address to the named file.
func TestAgentProcess(t *testing.T) {
	dir := os.Getenv("FIELDKIT_PRINTER_AGENT")
	if dir == "" {
		return
	}
	logf, _ := os.OpenFile(filepath.Join(dir, "agent.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	log := slog.New(slog.NewTextHandler(logf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg := Config{"counter": {
		Profile:       label.Profile{Language: label.ESCPOS, WidthDots: 576},
		Transport:     "serial",
		Path:          os.Getenv("FIELDKIT_PRINTER_LINK"),
		Baud:          fastBaud,
		StatusTimeout: 150 * time.Millisecond,
		PollInterval:  20 * time.Millisecond,
	}}
	svc, err := New(cfg, Deps{DataDir: dir, Bus: bus.New(log), Log: log})
	if err != nil {
		t.Fatal(err)
	}
	rt := httpapi.NewRouter(httpapi.OpenAuth{}, log)
	svc.Routes(rt)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go http.Serve(ln, rt.Handler())
	addrFile := os.Getenv("FIELDKIT_PRINTER_ADDR")
	os.WriteFile(addrFile+".tmp", []byte(ln.Addr().String()), 0o644)
	os.Rename(addrFile+".tmp", addrFile)
	svc.Run(context.Background()) // until killed
}

type agentProc struct {
	cmd  *exec.Cmd
	base string
}

func startAgent(t *testing.T, dir, link, tag string) *agentProc {
	t.Helper()
	addrFile := filepath.Join(dir, "addr-"+tag)
	name, args := os.Args[0], []string{"-test.run=^TestAgentProcess$", "-test.count=1"}
	// Cross-built tests run under qemu-user, which the kernel does not
	// know to start by itself: re-run through the same emulator.
	if w := os.Getenv("FIELDKIT_TEST_EXEC_WRAPPER"); w != "" {
		name, args = w, append([]string{name}, args...)
	}
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "FIELDKIT_PRINTER_AGENT="+dir, "FIELDKIT_PRINTER_LINK="+link, "FIELDKIT_PRINTER_ADDR="+addrFile)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	a := &agentProc{cmd: cmd}
	t.Cleanup(a.kill)
	waitFor(t, "agent "+tag+" to listen", func() bool {
		b, err := os.ReadFile(addrFile)
		if err == nil {
			a.base = "http://" + string(b)
		}
		return err == nil
	})
	return a
}

func (a *agentProc) kill() {
	if a.cmd.ProcessState != nil {
		return
	}
	a.cmd.Process.Signal(syscall.SIGKILL)
	a.cmd.Wait()
}

func (a *agentProc) post(t *testing.T, path string, body any) (int, queue.Job) {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post(a.base+path, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var j queue.Job
	json.NewDecoder(resp.Body).Decode(&j)
	return resp.StatusCode, j
}

func (a *agentProc) jobs(t *testing.T, state queue.State) []queue.Job {
	t.Helper()
	resp, err := http.Get(a.base + "/api/printers/counter/jobs?limit=1000&state=" + string(state))
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

// TestKilledAgentPrintsEveryJobOnce queues 100 jobs in an agent process,
// kills it with SIGKILL, and checks that the next agent prints each of
// them exactly once; then it kills an agent in the middle of printing and
// checks that no job is lost or printed twice.
func TestKilledAgentPrintsEveryJobOnce(t *testing.T) {
	if os.Getenv("FIELDKIT_PRINTER_AGENT") != "" {
		return
	}
	dir := t.TempDir()
	link := filepath.Join(dir, "printer-counter")
	fp, err := fake.New(&fake.Opts{Lang: fake.ESCPOS, WidthDots: 576, Baud: fastBaud, Link: link, NoRender: true})
	if err != nil {
		t.Fatal(err)
	}
	defer fp.Close()
	if _, err := fp.OpenPTY(); err != nil {
		t.Fatal(err)
	}
	fp.Unplug() // the jobs wait in the queue; none is being written

	const n = 100
	a := startAgent(t, dir, link, "a")
	for i := range n {
		id := fmt.Sprintf("job-%03d", i)
		code, j := a.post(t, "/api/printers/counter/jobs", JobRequest{ID: id, Label: textLabel(fmt.Sprintf("JOB %03d", i))})
		if code != http.StatusCreated || j.ID != id {
			t.Fatalf("POST %s: %d %+v", id, code, j)
		}
	}
	if code, _ := a.post(t, "/api/printers/counter/jobs", JobRequest{ID: "job-007", Label: textLabel("JOB 007")}); code != http.StatusOK {
		t.Fatalf("same id again: %d, want 200", code)
	}
	a.kill()

	fp.Plug()
	b := startAgent(t, dir, link, "b")
	waitFor(t, "all jobs done", func() bool { return len(b.jobs(t, queue.Done)) == n })
	if u := b.jobs(t, queue.Uncertain); len(u) != 0 {
		t.Fatalf("%d uncertain jobs after a kill with nothing in flight", len(u))
	}
	texts := printedTexts(fp)
	for i := range n {
		if c := texts[fmt.Sprintf("JOB %03d", i)]; c != 1 {
			t.Fatalf("JOB %03d printed %d times", i, c)
		}
	}
	if fp.Printed() != n {
		t.Fatalf("fake printed %d labels, want %d", fp.Printed(), n)
	}

	// Now kill an agent while it prints.
	for i := range n {
		id := fmt.Sprintf("second-%03d", i)
		b.post(t, "/api/printers/counter/jobs", JobRequest{ID: id, Label: textLabel(fmt.Sprintf("SECOND %03d", i))})
	}
	waitFor(t, "printing to be under way", func() bool { return fp.Printed() >= n+20 })
	b.kill()
	atKill := fp.Printed() - n
	c := startAgent(t, dir, link, "c")
	waitFor(t, "the queue to drain", func() bool {
		return len(c.jobs(t, queue.Queued)) == 0 && len(c.jobs(t, queue.Printing)) == 0
	})
	done, unc := c.jobs(t, queue.Done), c.jobs(t, queue.Uncertain)
	if len(done)+len(unc) != 2*n {
		t.Fatalf("%d done + %d uncertain, want %d jobs accounted for", len(done), len(unc), 2*n)
	}
	t.Logf("killed after %d of %d labels: %d done, %d uncertain", atKill, n, len(done)-n, len(unc))
	if atKill >= n {
		t.Fatal("the agent finished before it was killed; the kill proved nothing")
	}
	if len(unc) > 1 {
		t.Fatalf("%d uncertain jobs; at most the one being written can be", len(unc))
	}
	texts = printedTexts(fp)
	for _, j := range done {
		want := strings.Replace(strings.ToUpper(j.ID), "-", " ", 1)
		if texts[want] != 1 {
			t.Errorf("done job %s printed %d times", j.ID, texts[want])
		}
	}
	for txt, c := range texts {
		if c > 1 {
			t.Errorf("%q printed %d times", txt, c)
		}
	}
}

func printedTexts(fp *fake.Printer) map[string]int {
	out := map[string]int{}
	for _, l := range fp.Labels() {
		for _, tx := range l.Texts() {
			out[tx]++
		}
	}
	return out
}
