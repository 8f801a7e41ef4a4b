package main

import (
	"strings"
	"testing"
	"time"

	"fieldkit/battery"
	"fieldkit/internal/health"
	"fieldkit/printer/service"
	"fieldkit/printer/status"
)

func TestPartHealthFromWhatItNeeds(t *testing.T) {
	now := time.Now()
	st, why := printersHealth([]service.PrinterState{
		{Name: "counter", State: status.Ready, Updated: now},
		{Name: "shelf", State: status.Offline, Flags: []string{"not connected: connection refused"}, Updated: now},
		{Name: "desk", State: status.Unknown}, // not asked yet
	})
	if st != health.Degraded || !strings.Contains(why, "shelf: offline (not connected: connection refused)") || strings.Contains(why, "desk") {
		t.Fatalf("printers: %s %q", st, why)
	}
	if st, why := printersHealth([]service.PrinterState{{Name: "counter", State: status.PaperLow, Updated: now}}); st != health.OK || why != "" {
		t.Fatalf("printers that can print: %s %q", st, why)
	}
	st, why = batteryHealth([]battery.State{
		{Rig: "cam1", Source: "ina226"},
		{Rig: "cam2", Source: "nut", Error: "connection refused"},
		{Rig: "cam3", Source: "mqtt", Stale: true},
	})
	if st != health.Degraded || !strings.Contains(why, "cam2: source nut fails: connection refused") || !strings.Contains(why, "cam3") || strings.Contains(why, "cam1") {
		t.Fatalf("battery: %s %q", st, why)
	}
	if st, _ := batteryHealth([]battery.State{{Rig: "cam1"}}); st != health.OK {
		t.Fatalf("healthy battery rig: %s", st)
	}
}
