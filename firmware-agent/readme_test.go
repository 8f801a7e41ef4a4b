package main

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

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
