package config_test

import (
	"strings"
	"testing"

	"fieldkit/drivers/outputs/gpiopin"
	"fieldkit/firmware-agent/config"
)

// The sections sit at the top of the agent's file, and their problems
// come back with the file's line numbers.
func TestOutputsInAgentConfig(t *testing.T) {
	good := "box: stage1\noutputs:\n  cue_lamp: {kind: gpio, pin: GPIO17}\nbuttons:\n  go: {pin: GPIO27}\n"
	c, err := config.Parse("agent.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	lamp, _ := c.Cues.Outputs["cue_lamp"].Config.(*gpiopin.Config)
	if lamp == nil || lamp.Pin != "GPIO17" || c.Cues.Buttons["go"].Pin != "GPIO27" {
		t.Fatalf("decoded %+v", c.Cues)
	}
	bad := "box: stage1\noutputs:\n  cue_lamp:\n    kind: gpio\n    pin: GPIO17\n  w:\n    kind: wearable\n    fallback: lamp\n"
	_, err = config.Parse("agent.yaml", []byte(bad))
	if err == nil || !strings.Contains(err.Error(), `agent.yaml:8: outputs.w.fallback: no output named "lamp"`) {
		t.Fatalf("got %v", err)
	}
}
