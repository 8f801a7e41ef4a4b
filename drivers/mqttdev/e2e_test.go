package mqttdev

import (
	"context"
	"slices"
	"testing"
	"time"

	"fieldkit/drivers/cue"
	"fieldkit/internal/bus"
	"fieldkit/internal/devsim"
	"fieldkit/internal/mqttc"
	"fieldkit/internal/mqtttest"
	"fieldkit/internal/testutil"
)

var brokers = map[string]func(*testing.T) string{
	"embedded":  func(t *testing.T) string { return mqtttest.StartEmbedded(t) },
	"mosquitto": func(t *testing.T) string { return mqtttest.StartMosquitto(t).URL() },
}

// startAgentConn runs the agent's MQTT connection to url until the test ends.
func startAgentConn(t *testing.T, url string) (*mqttc.Conn, context.Context) {
	t.Helper()
	conn := mqttc.New(mqttc.Options{URL: url, ClientID: "fieldkit-box1", Prefix: "fieldkit/box1", MaxReconnect: 300 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- conn.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return conn, ctx
}

// TestEndToEnd runs the devices on the agent's real MQTT connection
// through the embedded broker and through Mosquitto.
func TestEndToEnd(t *testing.T) {
	for name, start := range brokers {
		t.Run(name, func(t *testing.T) {
			url := start(t)
			conn, ctx := startAgentConn(t, url)

			obs := mqtttest.Connect(t, url, "observer")
			all := obs.Subscribe("#")

			// The presenter's wearable acknowledges every cue it gets.
			anna, err := devsim.StartWearable(url, "wearable-anna", "fieldkit/box1", "anna", 5*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(anna.Close)

			b := bus.New(nil)
			alerts := b.Subscribe("cue/+/alert", 4)
			wled, err := NewDevice(conn, &Opts{Name: "stage", Kind: WLED, Topic: "wled/stage"})
			if err != nil {
				t.Fatal(err)
			}
			defer wled.Close()
			wa, err := NewWearable(conn, &WearableOpts{Name: "presenter", ID: "anna", Bus: b})
			if err != nil {
				t.Fatal(err)
			}
			defer wa.Close()
			fb := &lamp{}
			wb, err := NewWearable(conn, &WearableOpts{Name: "guest", ID: "bob", Fallback: fb, Bus: b, AckTimeout: 200 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			defer wb.Close()
			testutil.WaitFor(t, 10*time.Second, "connect", conn.Connected)

			// A light.
			if err := wled.Apply(ctx, cue.Action{Do: cue.Color, Color: "#ff0000"}); err != nil {
				t.Fatal(err)
			}
			const wantWLED = `{"on":true,"bri":255,"seg":[{"col":[[255,0,0]]}]}`
			mqtttest.Await(t, all, 10*time.Second, "WLED command", func(m mqtttest.Msg) bool {
				return m.Topic == "wled/stage/api" && m.Payload == wantWLED && !m.Retained
			})

			// A wearable that answers.
			if err := wa.Apply(ctx, cue.Action{Do: cue.Haptic, Pattern: "short"}); err != nil {
				t.Fatal(err)
			}
			testutil.WaitFor(t, 10*time.Second, "ack from anna", func() bool { return wa.State().(WearableState).Status == "acked" })
			if st := wa.State().(WearableState); st.Sends != 1 || !slices.Equal(anna.Played(), []string{"short"}) {
				t.Fatalf("anna: %+v, played %q", st, anna.Played())
			}

			// A wearable that is switched off: two sends, then the lamp.
			if err := wb.Apply(ctx, cue.Action{Do: cue.Haptic, Pattern: "double"}); err != nil {
				t.Fatal(err)
			}
			var sent []mqtttest.Msg
			for len(sent) < 2 {
				sent = append(sent, mqtttest.Await(t, all, 10*time.Second, "cue to bob", func(m mqtttest.Msg) bool {
					return m.Topic == "fieldkit/box1/cue/bob/cmd"
				}))
			}
			if sent[0].Payload != sent[1].Payload || sent[0].Retained || sent[1].Retained {
				t.Fatalf("repeat differs or is retained: %+v", sent)
			}
			select {
			case ev := <-alerts.C():
				if ev.Topic != "cue/bob/alert" {
					t.Fatalf("alert on %s", ev.Topic)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no alert for bob")
			}
			if got := fb.actions(); len(got) != 1 || got[0].Pattern != "double" {
				t.Fatalf("fallback got %+v", got)
			}

		})
	}
}
