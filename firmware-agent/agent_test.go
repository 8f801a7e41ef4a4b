package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"fieldkit/internal/mqtttest"
)

// agentBin is the firmware-agent binary built once for the process tests.
var agentBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "fieldkit-agent-test")
	if err != nil {
		panic(err)
	}
	agentBin = filepath.Join(dir, "firmware-agent")
	out, err := exec.Command("go", "build", "-o", agentBin, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building the agent: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// agentProc is a firmware-agent process owned by a test.
type agentProc struct {
	cmd  *exec.Cmd
	http string
	log  *syncBuf
	done chan error
}

type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startAgent(t *testing.T, env []string, args ...string) *agentProc {
	t.Helper()
	httpAddr := mqtttest.FreePort(t)
	args = append([]string{"run", "--http", httpAddr, "--data", t.TempDir()}, args...)
	cmd := exec.Command(agentBin, args...)
	cmd.Env = append(os.Environ(), env...)
	p := &agentProc{cmd: cmd, http: httpAddr, log: &syncBuf{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = p.log, p.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("agent log:\n%s", p.log.String())
		}
	})
	return p
}

// waitHealthy polls /healthz and returns how long it took.
func (p *agentProc) waitHealthy(t *testing.T, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < within {
		// Each try is bounded: a port taken meanwhile by another program
		// that accepts and never answers must fail the test, not hang it.
		resp, err := (&http.Client{Timeout: 2 * time.Second}).Get("http://" + p.http + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return time.Since(start)
			}
		}
		select {
		case err := <-p.done:
			t.Fatalf("agent exited before it was healthy: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("/healthz not 200 within %v", within)
	return 0
}

func (p *agentProc) status(t *testing.T) Status {
	t.Helper()
	resp, err := http.Get("http://" + p.http + "/api/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s Status
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "agent.yaml")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// The demo: no config, embedded broker; healthy within 5 s, retained
// online, and a clean SIGTERM stop within 5 s that says offline.
func TestDemoBootsAndStopsCleanly(t *testing.T) {
	mqttAddr := mqtttest.FreePort(t)
	p := startAgent(t, nil, "--mqtt-listen", mqttAddr)
	took := p.waitHealthy(t, 5*time.Second)
	t.Logf("healthz 200 after %v", took)

	// The observer may subscribe before the agent has connected, and then
	// sees "online" live (not flagged retained); a second subscriber that
	// arrives afterwards proves it was retained.
	cl := mqtttest.Connect(t, "tcp://"+mqttAddr, "observer")
	st := cl.Subscribe("fieldkit/demo/status")
	mqtttest.Await(t, st, 10*time.Second, "online", func(m mqtttest.Msg) bool { return m.Payload == "online" })
	late := mqtttest.Connect(t, "tcp://"+mqttAddr, "late-observer").Subscribe("fieldkit/demo/status")
	mqtttest.Await(t, late, 5*time.Second, "retained online", func(m mqtttest.Msg) bool {
		return m.Payload == "online" && m.Retained
	})
	s := p.status(t)
	if s.Box != "demo" || s.Board.Profile != "sim" || !s.Demo || !s.MQTT.Embedded {
		t.Fatalf("status %+v", s)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	mqtttest.Await(t, st, 5*time.Second, "offline on clean stop", func(m mqtttest.Msg) bool { return m.Payload == "offline" })
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
		p.done <- nil
	case <-time.After(5 * time.Second):
		t.Fatal("agent did not stop within 5 s of SIGTERM")
	}
}

// With an external Mosquitto: kill -9 leaves the broker to publish the
// last will, and a broker restart is survived.
func TestExternalBrokerWillAndReconnect(t *testing.T) {
	m := mqtttest.StartMosquitto(t)
	cfg := writeConfig(t, "box: venue-1\nboard: sim\nmqtt:\n  url: "+m.URL()+"\n")
	p := startAgent(t, nil, "--config", cfg)
	p.waitHealthy(t, 5*time.Second)
	if s := p.status(t); s.MQTT.Embedded {
		t.Fatal("embedded a broker although the config names one")
	}
	cl := mqtttest.Connect(t, m.URL(), "observer")
	st := cl.Subscribe("fieldkit/venue-1/status")
	mqtttest.Await(t, st, 5*time.Second, "retained online", func(m mqtttest.Msg) bool { return m.Payload == "online" })

	// The broker dies and comes back: the agent says online again by itself.
	m.Stop()
	m.Start()
	cl2 := mqtttest.Connect(t, m.URL(), "observer2")
	st2 := cl2.Subscribe("fieldkit/venue-1/status")
	mqtttest.Await(t, st2, 20*time.Second, "online after broker restart", func(m mqtttest.Msg) bool { return m.Payload == "online" })

	// kill -9: no goodbye from the agent; the broker fires the will.
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	mqtttest.Await(t, st2, 10*time.Second, "offline will after kill -9", func(m mqtttest.Msg) bool { return m.Payload == "offline" })
	cl3 := mqtttest.Connect(t, m.URL(), "observer3")
	st3 := cl3.Subscribe("fieldkit/venue-1/status")
	mqtttest.Await(t, st3, 5*time.Second, "offline retained", func(m mqtttest.Msg) bool { return m.Payload == "offline" && m.Retained })
}

// Under systemd the agent says READY and pings the watchdog.
func TestSystemdNotify(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify.sock")
	l, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	startAgent(t, []string{"NOTIFY_SOCKET=" + sock, "WATCHDOG_USEC=200000"}, "--mqtt-listen", mqtttest.FreePort(t))
	_ = l.SetReadDeadline(time.Now().Add(10 * time.Second))
	seen := map[string]bool{}
	buf := make([]byte, 512)
	for !(seen["READY=1"] && seen["WATCHDOG=1"]) {
		n, err := l.Read(buf)
		if err != nil {
			t.Fatalf("notifications so far %v: %v", seen, err)
		}
		for _, line := range strings.Split(string(buf[:n]), "\n") {
			seen[line] = true
		}
	}
}

// A port conflict is a clear start-up error and a non-zero exit.
func TestPortInUseIsClearError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cmd := exec.Command(agentBin, "run", "--data", t.TempDir(), "--http", mqtttest.FreePort(t), "--mqtt-listen", ln.Addr().String())
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatal("agent started on a taken port")
	}
	if !strings.Contains(string(out), "address already in use") || !strings.Contains(string(out), ln.Addr().String()) {
		t.Fatalf("output:\n%s", out)
	}
}

// doctor fails, with what to do, when the data dir is not writable.
func TestDoctorExitCodes(t *testing.T) {
	ro := filepath.Join(t.TempDir(), "ro")
	if err := os.MkdirAll(ro, 0o500); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(ro, "data")
	if os.Geteuid() == 0 {
		// root writes anywhere: use a path under a regular file instead.
		f := filepath.Join(t.TempDir(), "file")
		os.WriteFile(f, nil, 0o644)
		target = filepath.Join(f, "data")
	}
	cmd := exec.Command(agentBin, "doctor", "--data", target, "--http", mqtttest.FreePort(t), "--mqtt-listen", mqtttest.FreePort(t))
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("doctor passed with an unusable data dir:\n%s", out)
	}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	var failLine, fixLine bool
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "fail  data dir") {
			failLine = true
		}
		if failLine && strings.Contains(line, "→") {
			fixLine = true
			break
		}
	}
	if !failLine || !fixLine {
		t.Fatalf("doctor output lacks the failing check and its fix:\n%s", out)
	}
	ok := exec.Command(agentBin, "doctor", "--data", t.TempDir(), "--http", mqtttest.FreePort(t), "--mqtt-listen", mqtttest.FreePort(t))
	out, err = ok.CombinedOutput()
	if err != nil {
		t.Fatalf("doctor failed on a healthy demo setup: %v\n%s", err, out)
	}
}
