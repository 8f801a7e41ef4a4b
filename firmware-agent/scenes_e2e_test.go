package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fieldkit/internal/mqtttest"
	"fieldkit/internal/testutil"
)

// A publish on a scene's run topic through a real Mosquitto drives the
// sim board's pins and the WLED and Tasmota topics, in the scene's order.
func TestSceneRunThroughMosquitto(t *testing.T) {
	m := mqtttest.StartMosquitto(t)
	dir := t.TempDir()
	scenesDir := filepath.Join(dir, "scenes")
	if err := os.MkdirAll(scenesDir, 0o755); err != nil {
		t.Fatal(err)
	}
	scene := `name: show-open
policy: restart
steps:
  - {at: 0s, target: wled_stage, do: color, color: "#ff0000"}
  - {at: 300ms, target: tasmota_spot, do: "on"}
  - {at: 600ms, target: cue_lamp, do: "on"}
  - {at: 900ms, target: relay, do: "on"}
`
	if err := os.WriteFile(filepath.Join(scenesDir, "show-open.yaml"), []byte(scene), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, `box: venue-2
board: sim
mqtt:
  url: `+m.URL()+`
scenes:
  dir: `+scenesDir+`
outputs:
  cue_lamp:     {kind: gpio, pin: cue_lamp}
  relay:        {kind: gpio, pin: relay2}
  wled_stage:   {kind: wled, topic: wled/stage}
  tasmota_spot: {kind: tasmota, topic: stage-spot}
`)
	p := startAgent(t, nil, "--config", cfg)
	p.waitHealthy(t, 5*time.Second)

	cl := mqtttest.Connect(t, m.URL(), "shop")
	devices := cl.Subscribe("#")
	mqtttest.Await(t, devices, 10*time.Second, "scene state retained", func(m mqtttest.Msg) bool {
		return m.Topic == "fieldkit/venue-2/scene/show-open/state" && strings.Contains(m.Payload, `"idle"`)
	})
	if lamp := pinLevel(t, p, "GPIO17"); lamp {
		t.Fatal("cue lamp on before the scene ran")
	}
	cl.Publish("fieldkit/venue-2/scene/show-open/run", 1, false, "{}")

	wled := mqtttest.Await(t, devices, 5*time.Second, "WLED colour", func(m mqtttest.Msg) bool { return m.Topic == "wled/stage/api" })
	if !strings.Contains(wled.Payload, `[255,0,0]`) {
		t.Fatalf("WLED payload %s", wled.Payload)
	}
	if pinLevel(t, p, "GPIO17") {
		t.Fatal("cue lamp on before the Tasmota step (out of order)")
	}
	mqtttest.Await(t, devices, 5*time.Second, "Tasmota power on", func(m mqtttest.Msg) bool {
		return m.Topic == "cmnd/stage-spot/POWER" && m.Payload == "ON"
	})
	if pinLevel(t, p, "GPIO17") {
		t.Fatal("cue lamp on before its step (out of order)")
	}
	testutil.WaitFor(t, 5*time.Second, "cue lamp pin high", func() bool { return pinLevel(t, p, "GPIO17") })
	if pinLevel(t, p, "GPIO22") {
		t.Fatal("relay on together with the lamp; it is 300 ms later")
	}
	testutil.WaitFor(t, 5*time.Second, "relay pin high", func() bool { return pinLevel(t, p, "GPIO22") })
	mqtttest.Await(t, devices, 5*time.Second, "scene done", func(m mqtttest.Msg) bool {
		return m.Topic == "fieldkit/venue-2/scene/show-open/state" && strings.Contains(m.Payload, `"done"`)
	})
}

// pinLevel reads a sim pin's level from /api/status.
func pinLevel(t *testing.T, p *agentProc, line string) bool {
	t.Helper()
	st := p.status(t)
	state, _ := st.Board.State.(map[string]any)
	pins, _ := state["pins"].([]any)
	for _, raw := range pins {
		pin, _ := raw.(map[string]any)
		if pin["line"] == line {
			return pin["level"] == true
		}
	}
	return false
}

// waitUntil is testutil.WaitFor, under the name this package's tests use.
func waitUntil(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, within, what, cond)
}
