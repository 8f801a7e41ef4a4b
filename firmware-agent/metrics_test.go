package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"fieldkit/internal/mqtttest"
)

// findPromtool returns Prometheus's promtool, or skips saying how to get
// it (scripts/test.sh installs Debian's prometheus package).
func findPromtool(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("FIELDKIT_PROMTOOL"); p != "" {
		return p
	}
	if p, err := exec.LookPath("promtool"); err == nil {
		return p
	}
	t.Skip("promtool not found: install Debian's prometheus package (scripts/test.sh does) or set FIELDKIT_PROMTOOL")
	return ""
}

func scrape(t *testing.T, addr string) []byte {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d %v", resp.StatusCode, err)
	}
	return b
}

// The demo agent's live /metrics, after a wearable cue was acknowledged,
// passes promtool's lint, and carries the conventional names.
func TestMetricsPassPromtool(t *testing.T) {
	promtool := findPromtool(t)
	mqttAddr := mqtttest.FreePort(t)
	p := startAgent(t, nil, "--mqtt-listen", mqttAddr)
	p.waitHealthy(t, 10*time.Second)

	// The presenter's wearable answers the swap-battery cue.
	wear := mqtttest.Connect(t, "tcp://"+mqttAddr, "wearable")
	cmds := wear.Subscribe("fieldkit/demo/cue/presenter/cmd")
	resp, err := http.Post("http://"+p.http+"/api/scenes/swap-battery/run", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("run scene: %s", resp.Status)
	}
	cmd := mqtttest.Await(t, cmds, 10*time.Second, "the wearable's cue", func(mqtttest.Msg) bool { return true })
	var c struct{ ID string }
	if err := json.Unmarshal([]byte(cmd.Payload), &c); err != nil || c.ID == "" {
		t.Fatalf("cue %q", cmd.Payload)
	}
	wear.Publish("fieldkit/demo/cue/presenter/ack", 1, false, `{"id":"`+c.ID+`"}`)

	var body []byte
	deadline := time.Now().Add(10 * time.Second)
	for {
		body = scrape(t, p.http)
		if bytes.Contains(body, []byte("fieldkit_cue_latency_seconds_bucket")) && bytes.Contains(body, []byte("fieldkit_battery_charge_ratio{")) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no cue latency or battery charge in /metrics:\n%s", body)
		}
		time.Sleep(50 * time.Millisecond)
	}

	check := exec.Command(promtool, "check", "metrics")
	check.Stdin = bytes.NewReader(body)
	if out, err := check.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}

	for _, name := range []string{
		"fieldkit_battery_charge_ratio", "fieldkit_battery_voltage_volts", "fieldkit_battery_power_watts",
		"fieldkit_cue_confirmation_seconds_bucket", "fieldkit_cue_latency_seconds_bucket",
		"process_start_time_seconds",
	} {
		if !bytes.Contains(body, []byte("\n"+name)) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	for _, gone := range []string{"fieldkit_uptime_seconds", "fieldkit_battery_charge_percent", "fieldkit_battery_volts", "fieldkit_battery_watts"} {
		if bytes.Contains(body, []byte("\n"+gone+" ")) || bytes.Contains(body, []byte("\n"+gone+"{")) {
			t.Errorf("/metrics still has %s", gone)
		}
	}
	// The charge is a ratio: 0 to 1.
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "fieldkit_battery_charge_ratio{") {
			f := strings.Fields(line)
			if v := f[len(f)-1]; !(strings.HasPrefix(v, "0.") || v == "0" || v == "1") {
				t.Errorf("charge ratio %s", line)
			}
		}
	}
}
