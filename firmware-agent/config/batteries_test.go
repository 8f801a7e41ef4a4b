package config_test

import (
	"strings"
	"testing"

	"fieldkit/battery/source/ina"
	"fieldkit/firmware-agent/config"
)

// The section inside the agent's file: problems come back with file:line.
func TestBatteriesInAgentConfig(t *testing.T) {
	src := "box: venue-1\nbatteries:\n  - name: enc1\n    source: ina226\n    shunt_ohms: 0.002\n    max_current_a: 20\n    preset: vmount-26v\n    address: 0x90\n"
	_, err := config.Parse("agent.yaml", []byte(src))
	if err == nil || !strings.Contains(err.Error(), "agent.yaml:8: batteries[0].address: 0x90 is not an INA2xx address") {
		t.Fatalf("got %v", err)
	}
	c, err := config.Parse("agent.yaml", []byte(strings.Replace(src, "0x90", "0x41", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Batteries) != 1 {
		t.Fatalf("%+v", c.Batteries)
	}
	if ic, _ := c.Batteries[0].Settings.(*ina.Config); ic == nil || ic.Address != 0x41 {
		t.Fatalf("%+v", c.Batteries)
	}
}
