package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"fieldkit/battery"
	"fieldkit/battery/source/sim"
	"fieldkit/drivers/cue"
	"fieldkit/drivers/mqttdev"
	"fieldkit/internal/bus"
	"fieldkit/internal/clock"
	"fieldkit/internal/mqttc"
	"fieldkit/internal/mqtttest"
	"fieldkit/internal/testutil"
	"fieldkit/scenes"
)

// mirror stands in for the agent's bus-to-MQTT mirror: every bus event is
// published under the box prefix.
func mirrorAll(ctx context.Context, b *bus.Bus, conn *mqttc.Conn) {
	sub := b.Subscribe("#", 256)
	defer sub.Close()
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-sub.C():
			_ = conn.Publish(ctx, conn.Prefix()+"/"+ev.Topic, 1, false, ev.Payload)
		}
	}
}

// TestEndToEndSwapCue: a simulated pack crosses the warn level → the
// battery alert event fires a scene → the presenter's wearable receives
// the swap-battery pattern on its cue topic, all through a real Mosquitto.
// The retained state, the mirrored alert and Home Assistant discovery are
// checked on the same broker.
func TestBatteryAlertSwapCue(t *testing.T) {
	m := mqtttest.StartMosquitto(t)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	goRun := func(f func(context.Context) error) {
		wg.Add(1)
		go func() { defer wg.Done(); _ = f(ctx) }()
	}

	conn := mqttc.New(mqttc.Options{URL: m.URL(), ClientID: "agent-battery-e2e", Prefix: "fieldkit/e2e", Log: quiet})
	goRun(conn.Run)
	b := bus.New(quiet)
	goRun(func(ctx context.Context) error { mirrorAll(ctx, b, conn); return nil })

	wear, err := mqttdev.NewWearable(conn, &mqttdev.WearableOpts{Name: "presenter", Bus: b, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	scene := `name: swap-battery
triggers:
  - event: battery/+/alert
    match: {level: warn}
steps:
  - {at: 0s, target: presenter, do: haptic, pattern: swap-battery}
`
	if err := os.WriteFile(filepath.Join(dir, "swap.yaml"), []byte(scene), 0o644); err != nil {
		t.Fatal(err)
	}
	eng, err := scenes.New(scenes.Config{Dir: dir}, scenes.Deps{Targets: map[string]cue.Target{"presenter": wear}, MQTT: conn, Bus: b, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	goRun(eng.Run)

	clk := clock.NewFake(time.Date(2025, 6, 1, 18, 0, 0, 0, time.UTC))
	off := time.Duration(0)
	w, err := battery.New(battery.Config{{Name: "enc1", Source: battery.KindSim, Settings: &sim.Config{StartPercent: 26, Drain: 20 * time.Minute}, Poll: time.Second,
		Thresholds: battery.Thresholds{WarnTTE: &off, CriticalTTE: &off, SwapTTE: &off}}},
		battery.Deps{Box: "e2e", MQTT: conn, Bus: b, Clock: clk, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	goRun(w.Run)

	obs := mqtttest.Connect(t, m.URL(), "observer")
	cmds := obs.Subscribe("fieldkit/e2e/cue/presenter/cmd")
	alerts := obs.Subscribe("fieldkit/e2e/battery/enc1/alert")
	testutil.WaitFor(t, 10*time.Second, "agent connected", conn.Connected)

	// Drain the sim pack until the alert shows up on the broker.
	var alert mqtttest.Msg
	for i := 0; i < 120 && alert.Topic == ""; i++ {
		if !clk.WaitForTimers(2, 5*time.Second) {
			t.Fatal("battery watch not waiting on its timers")
		}
		clk.Advance(time.Second)
		select {
		case alert = <-alerts:
		case <-time.After(20 * time.Millisecond):
		}
	}
	if alert.Topic == "" {
		alert = mqtttest.Await(t, alerts, 5*time.Second, "battery alert", func(mqtttest.Msg) bool { return true })
	}
	var a battery.Alert
	if err := json.Unmarshal([]byte(alert.Payload), &a); err != nil || a.Level != "warn" || a.Rig != "enc1" || alert.Retained {
		t.Fatalf("alert %q retained=%v", alert.Payload, alert.Retained)
	}

	cmd := mqtttest.Await(t, cmds, 10*time.Second, "wearable cue", func(m mqtttest.Msg) bool { return true })
	var c mqttdev.Command
	if err := json.Unmarshal([]byte(cmd.Payload), &c); err != nil || c.Pattern != "swap-battery" || c.ID == "" {
		t.Fatalf("wearable command %q", cmd.Payload)
	}
	obs.Publish("fieldkit/e2e/cue/presenter/ack", 1, false, `{"id":"`+c.ID+`"}`)

	// A crew member's phone connecting now sees the retained state and the
	// Home Assistant entities.
	late := mqtttest.Connect(t, m.URL(), "late")
	state := late.Subscribe("fieldkit/e2e/battery/enc1/state")
	st := mqtttest.Await(t, state, 5*time.Second, "retained warn state", func(m mqtttest.Msg) bool {
		return m.Retained && strings.Contains(m.Payload, `"level":"warn"`)
	})
	var s battery.State
	if err := json.Unmarshal([]byte(st.Payload), &s); err != nil || s.Percent == nil || s.Volts == nil || s.Watts == nil || s.Updated == nil || s.Source != "sim" {
		t.Fatalf("state %q", st.Payload)
	}
	ha := late.Subscribe("homeassistant/sensor/fieldkit_e2e/#")
	got := map[string]bool{}
	mqtttest.Await(t, ha, 5*time.Second, "discovery", func(m mqtttest.Msg) bool {
		got[m.Topic] = m.Retained
		return got["homeassistant/sensor/fieldkit_e2e/enc1_charge/config"] && got["homeassistant/sensor/fieldkit_e2e/enc1_tte/config"]
	})
}
