package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigCheckScenes: config check loads the scene files against the
// configured outputs, every kind of them, without the hardware, and
// reports a bad scene at its file:line.
func TestConfigCheckScenes(t *testing.T) {
	dir := t.TempDir()
	sdir := filepath.Join(dir, "scenes")
	if err := os.Mkdir(sdir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "agent.yaml")
	if err := os.WriteFile(cfg, []byte(`box: b1
board: rpi4
pins: {cue_lamp: GPIO17, motor: GPIO18, button: GPIO27}
mqtt: {url: tcp://127.0.0.1:1883}
outputs:
  cue_lamp:  {kind: gpio, pin: cue_lamp, active_low: true}
  motor:     {kind: pwm, pin: motor}
  strip:     {kind: ws2812, spi: "0.0", leds: 30}
  puck:      {kind: drv2605, i2c: "1", actuator: erm}
  stage:     {kind: wled, topic: wled/stage}
  spot:      {kind: tasmota, topic: stage-spot}
  presenter: {kind: wearable, id: anna, fallback: cue_lamp}
scenes: {dir: `+sdir+`}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	good := `name: drop
steps:
  - {at: 0s, target: strip, do: effect, effect: countdown, for: 60s, color: "#ff6600"}
  - {at: 30s, targets: [motor, puck, presenter], do: haptic, pattern: short}
  - {at: 60s, target: cue_lamp, do: "on"}
  - {at: 60s, target: spot, do: "on"}
  - {at: 60s, target: stage, do: color, color: "#00ff00"}
`
	check := func(t *testing.T, scene string) (int, string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(sdir, "drop.yaml"), []byte(scene), 0o644); err != nil {
			t.Fatal(err)
		}
		var out, errb bytes.Buffer
		code := cli(context.Background(), []string{"config", "check", cfg}, &out, &errb)
		return code, errb.String()
	}
	if code, msg := check(t, good); code != 0 {
		t.Fatalf("good scene refused: exit %d: %s", code, msg)
	}
	for _, c := range []struct{ name, scene, want string }{
		{"unknown target", strings.Replace(good, "target: spot", "target: spott", 1), "drop.yaml:6:"},
		{"colour on the haptic driver", strings.Replace(good, "targets: [motor, puck, presenter], do: haptic, pattern: short", `target: puck, do: color, color: "#ff0000"`, 1), "drop.yaml:4:"},
		{"colour on a relay", strings.Replace(good, `target: cue_lamp, do: "on"`, `target: cue_lamp, do: color, color: "#ff0000"`, 1), "drop.yaml:5:"},
		{"unknown pattern", strings.Replace(good, "pattern: short", "pattern: shorty", 1), "drop.yaml:4:"},
		{"negative at", strings.Replace(good, "at: 60s, target: cue_lamp", "at: -1s, target: cue_lamp", 1), "drop.yaml:5:"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, msg := check(t, c.scene)
			if code == 0 || !strings.Contains(msg, c.want) {
				t.Fatalf("exit %d, stderr %q; want a failure naming %s", code, msg, c.want)
			}
		})
	}
}
