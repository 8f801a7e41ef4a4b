package scenes

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"fieldkit/internal/bus"
	"fieldkit/internal/clock"
	"fieldkit/internal/mqttc"
	"fieldkit/internal/mqtttest"
)

// TestEndToEndMosquitto runs a scene from a publish on its run topic
// through a real Mosquitto and the agent's MQTT connection.
func TestEndToEndMosquitto(t *testing.T) {
	m := mqtttest.StartMosquitto(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	conn := mqttc.New(mqttc.Options{URL: m.URL(), ClientID: "agent-e2e", Prefix: "fieldkit/e2e", Log: quietLog()})
	connDone := make(chan struct{})
	go func() { defer close(connDone); _ = conn.Run(ctx) }()

	rec := &recorder{clk: clock.Real()}
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"drop.yaml": `name: drop
policy: restart
triggers:
  - mqtt: shop/drop/+
steps:
  - {at: 0s, targets: [strip, cue_lamp], do: "on"}
  - {at: 50ms, target: motor, do: haptic, pattern: short}
  - {at: 100ms, publish: {topic: studio/live, passthrough: true}}
  - {at: 150ms, target: cue_lamp, do: "off"}
`})
	e, err := New(Config{Dir: dir}, Deps{Targets: newTargets(rec, "strip", "cue_lamp", "motor"), MQTT: conn,
		Bus: bus.New(quietLog()), Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	engDone := make(chan struct{})
	go func() { defer close(engDone); _ = e.Run(ctx) }()
	defer func() { cancel(); <-engDone; <-connDone }()

	cl := mqtttest.Connect(t, m.URL(), "shop-e2e")
	errs := cl.Subscribe("fieldkit/e2e/scene/drop/run/error")
	states := cl.Subscribe("fieldkit/e2e/scene/drop/state")
	live := cl.Subscribe("studio/live")

	// The agent subscribes in the background; a bad payload answered on
	// .../error shows the run topic is live, and is itself the bad-input case.
	deadline := time.Now().Add(10 * time.Second)
	for {
		cl.Publish("fieldkit/e2e/scene/drop/run", 1, false, "not json")
		select {
		case msg := <-errs:
			var reply mqttc.ErrorReply
			if err := json.Unmarshal([]byte(msg.Payload), &reply); err != nil || !strings.Contains(reply.Error, "not JSON") {
				t.Fatalf("error reply %q", msg.Payload)
			}
		case <-time.After(200 * time.Millisecond):
			if time.Now().After(deadline) {
				t.Fatal("no error reply on the run topic")
			}
			continue
		}
		break
	}
	if n := len(rec.all()); n != 0 {
		t.Fatalf("a bad payload ran %d actions", n)
	}

	cl.Publish("fieldkit/e2e/scene/drop/run", 1, false, `{"drop":"sneaker-42"}`)
	mqtttest.Await(t, states, 10*time.Second, "done state", func(m mqtttest.Msg) bool {
		return strings.Contains(m.Payload, `"state":"done"`)
	})
	got := rec.names()
	want := []string{"strip", "cue_lamp", "motor", "cue_lamp"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("outputs fired %v, want %v", got, want)
	}
	if all := rec.all(); all[3].action.Do != "off" {
		t.Fatalf("timeline %+v", all)
	}
	d, _ := e.Get("drop")
	for i, at := range []time.Duration{0, 50 * time.Millisecond, 100 * time.Millisecond, 150 * time.Millisecond} {
		if s := d.LastRun.Steps[i]; s.Planned.Sub(d.LastRun.Started) != at || s.Actual == nil {
			t.Fatalf("step %d planned %v after the start, want %v", i+1, s.Planned.Sub(d.LastRun.Started), at)
		}
	}
	mqtttest.Await(t, live, 5*time.Second, "passthrough", func(m mqtttest.Msg) bool { return m.Payload == `{"drop":"sneaker-42"}` })

	// The shop's own topic fires it too, with a wildcard filter.
	cl.Publish("shop/drop/start", 1, false, "go")
	mqtttest.Await(t, live, 10*time.Second, "second passthrough", func(m mqtttest.Msg) bool { return m.Payload == "go" })
	d, _ = e.Get("drop")
	if d.LastRun.Trigger != "mqtt shop/drop/start" {
		t.Fatalf("trigger %q", d.LastRun.Trigger)
	}

	// A late subscriber sees the retained state.
	late := mqtttest.Connect(t, m.URL(), "late").Subscribe("fieldkit/e2e/scene/drop/state")
	mqtttest.Await(t, late, 5*time.Second, "retained state", func(m mqtttest.Msg) bool { return m.Retained })
}
