package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"fieldkit/internal/mqtttest"
)

// Under systemd, standard error is the journal's stream and
// JOURNAL_STREAM names it: every line then starts with its sd-daemon
// priority and carries no time (the journal stamps it).
func TestRunUnderJournal(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "journal-stream"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	st := fi.Sys().(*syscall.Stat_t)
	httpAddr := mqtttest.FreePort(t)
	cmd := exec.Command(agentBin, "run", "--http", httpAddr, "--data", t.TempDir(), "--mqtt-listen", mqtttest.FreePort(t))
	cmd.Env = append(os.Environ(), fmt.Sprintf("JOURNAL_STREAM=%d:%d", uint64(st.Dev), uint64(st.Ino)))
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	p := &agentProc{cmd: cmd, http: httpAddr, log: &syncBuf{}, done: done}
	p.waitHealthy(t, 10*time.Second)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("agent did not stop on SIGTERM")
	}
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	prefix := regexp.MustCompile(`^<[0-7]>`)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	started := false
	for _, l := range lines {
		if !prefix.MatchString(l) {
			t.Errorf("line without a priority prefix: %q", l)
		}
		if strings.Contains(l, "time=") {
			t.Errorf("line with its own time: %q", l)
		}
		if strings.HasPrefix(l, "<6>") && strings.Contains(l, "fieldkit agent starting") {
			started = true
		}
	}
	if !started {
		t.Errorf("no <6> line saying the agent starts in:\n%s", b)
	}
}
