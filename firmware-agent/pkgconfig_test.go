package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fieldkit/internal/mqtttest"
)

// The package's first configuration (packaging/deb/default-config, run by
// postinst): with a broker already on the port the template's embedded
// broker would take, the agent joins that broker, here a real Mosquitto;
// with the port free, the template is used as it is.
func TestPackageDefaultConfigJoinsExistingBroker(t *testing.T) {
	if _, err := exec.LookPath("awk"); err != nil {
		t.Skip("no awk")
	}
	m := mqtttest.StartMosquitto(t)
	shipped, err := os.ReadFile("../packaging/deb/agent.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(shipped), "\n  listen: 127.0.0.1:1883\n") {
		t.Fatal("the shipped agent.yaml no longer embeds a broker on 127.0.0.1:1883")
	}
	// The shipped template, with the test's ports and a scratch data dir
	// in place of the box's (the port taken is Mosquitto's, not 1883).
	httpAddr := mqtttest.FreePort(t)
	tmpl := strings.NewReplacer(
		"\n  listen: 127.0.0.1:1883\n", "\n  listen: "+m.Addr+"\n",
		"listen: 0.0.0.0:8080", "listen: "+httpAddr,
		"data_dir: /var/lib/fieldkit", "data_dir: "+filepath.Join(t.TempDir(), "data"),
	).Replace(string(shipped))
	tmplPath := filepath.Join(t.TempDir(), "agent.yaml.template")
	if err := os.WriteFile(tmplPath, []byte(tmpl), 0o644); err != nil {
		t.Fatal(err)
	}
	gen := func() string {
		out, err := exec.Command("sh", "../packaging/deb/default-config", tmplPath).Output()
		if err != nil {
			t.Fatalf("default-config: %v", err)
		}
		return string(out)
	}

	cfg := gen()
	if !strings.Contains(cfg, "\n  url: tcp://"+m.Addr+"\n") || strings.Contains(cfg, "\n  listen: "+m.Addr) {
		t.Fatalf("with a broker on %s, the config does not join it:\n%s", m.Addr, cfg)
	}
	if strings.Contains(cfg, "listen: "+httpAddr) == false {
		t.Fatalf("http.listen changed:\n%s", cfg)
	}
	cfgPath := filepath.Join(t.TempDir(), "agent.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o640); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(agentBin, "config", "check", cfgPath).CombinedOutput(); err != nil {
		t.Fatalf("config check: %v\n%s", err, out)
	}

	// The agent starts and announces itself on the existing broker.
	obs := mqtttest.Connect(t, "tcp://"+m.Addr, "observer")
	status := obs.Subscribe("fieldkit/box1/status")
	cmd := exec.Command(agentBin, "run", "--config", cfgPath)
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
	p.waitHealthy(t, 10*time.Second)
	mqtttest.Await(t, status, 10*time.Second, "online on the venue's Mosquitto", func(msg mqtttest.Msg) bool {
		return msg.Payload == "online"
	})

	// Port free: the template as shipped.
	m.Stop()
	if got := gen(); got != tmpl {
		t.Fatalf("with the port free the config differs from the template:\n%s", got)
	}
}
