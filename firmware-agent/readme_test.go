package main

import (
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"fieldkit/firmware-agent/config"
	"fieldkit/internal/mqtttest"
	"fieldkit/scenes"
)

// The README's example config and scene file must stay valid: they are
// what a crew copies first.
func TestREADMEExamplesAreValid(t *testing.T) {
	cfgText, sceneText, _ := readmeExamples(t)
	cfg, err := config.Parse("README.md", []byte(cfgText))
	if err != nil {
		t.Fatalf("README example config:\n%v", err)
	}
	if len(cfg.Cues.Outputs) < 9 || len(cfg.Printers) != 3 || len(cfg.Batteries) != 3 || len(cfg.Preflight.Items) != 3 {
		t.Fatalf("example decoded short: %d outputs, %d printers, %d batteries", len(cfg.Cues.Outputs), len(cfg.Printers), len(cfg.Batteries))
	}
	// The scene needs the demo's outputs to resolve its targets.
	demo, err := config.Parse("demo.yaml", demoYAML)
	if err != nil {
		t.Fatal(err)
	}
	sim := t.TempDir()
	a, err := newApp(t.Context(), withPorts(t, demo, sim), discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	if _, err := scenes.Parse("README.md", []byte(sceneText), a.targets); err != nil {
		t.Fatalf("README example scene: %v", err)
	}
}

// readmeExamples returns the README's example config (the show config),
// with the files it names under /etc/fieldkit made in a temporary dir,
// and its example scene file; etc is that dir (with scenes/ in it).
func readmeExamples(t *testing.T) (cfgText, sceneText, etc string) {
	t.Helper()
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(readme), -1)
	for _, b := range blocks {
		switch {
		case strings.Contains(b[1], "box: popup-berlin-1") && strings.Contains(b[1], "outputs:"):
			cfgText = b[1]
		case strings.HasPrefix(b[1], "name: drop-countdown"):
			sceneText = b[1]
		}
	}
	if cfgText == "" || sceneText == "" {
		t.Fatal("README lost its example config or scene file")
	}
	// The example names files under /etc/fieldkit; make them here.
	etc = t.TempDir()
	cfgText = strings.ReplaceAll(cfgText, "/etc/fieldkit/", etc+"/")
	if err := os.Mkdir(filepath.Join(etc, "scenes"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"mqtt.password", "cloud.token"} {
		if err := os.WriteFile(filepath.Join(etc, f), []byte("secret\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return cfgText, sceneText, etc
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// withPorts points cfg at a fresh data dir and free loopback ports.
func withPorts(t *testing.T, cfg *config.Config, data string) *config.Config {
	t.Helper()
	cfg.DataDir = data
	cfg.HTTP.Listen = mqtttest.FreePort(t)
	cfg.MQTT.Listen = mqtttest.FreePort(t)
	return cfg
}

// The README's job requests are what POST /api/printers/{name}/jobs
// takes: both queue on a real agent, and the pickup job shows its order
// and buyer.
func TestREADMEJobExamples(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var jobs []string
	for _, b := range regexp.MustCompile("(?s)```json\n(.*?)```").FindAllStringSubmatch(string(readme), -1) {
		if strings.Contains(b[1], `"label": {"elements"`) || strings.Contains(b[1], `"pickup": {`) {
			jobs = append(jobs, b[1])
		}
	}
	if len(jobs) != 2 {
		t.Fatalf("README has %d job examples, want a label and a pickup", len(jobs))
	}
	cfg := writeConfig(t, "box: b1\nboard: sim\nprinters:\n  counter: {language: escpos, transport: fake, width_dots: 576}\n")
	p := startAgent(t, nil, "--config", cfg, "--mqtt-listen", mqtttest.FreePort(t))
	p.waitHealthy(t, 10*time.Second)
	for _, j := range jobs {
		resp, err := http.Post("http://"+p.http+"/api/printers/counter/jobs", "application/json", strings.NewReader(j))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("README job refused: %s\n%s\n%s", resp.Status, body, j)
		}
		if strings.Contains(j, "pickup") && (!strings.Contains(string(body), `"order": "A-1042"`) || !strings.Contains(string(body), `"buyer": "Mara K."`)) {
			t.Fatalf("pickup job answer lacks its order and buyer:\n%s", body)
		}
	}
}
