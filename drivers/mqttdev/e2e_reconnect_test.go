package mqttdev

import (
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"fieldkit/drivers/cue"
	"fieldkit/internal/mqtttest"
	"fieldkit/internal/testutil"
)

// TestReassertAfterReconnect kicks the agent off the broker (another
// client takes its id); once back, the agent tells the WLED its state
// again.
func TestReassertAfterReconnect(t *testing.T) {
	for name, start := range brokers {
		t.Run(name, func(t *testing.T) {
			url := start(t)
			conn, ctx := startAgentConn(t, url)
			all := mqtttest.Connect(t, url, "observer").Subscribe("wled/#")
			wled, err := NewDevice(conn, &Opts{Name: "stage", Kind: WLED, Topic: "wled/stage"})
			if err != nil {
				t.Fatal(err)
			}
			defer wled.Close()
			testutil.WaitFor(t, 10*time.Second, "connect", conn.Connected)
			if err := wled.Apply(ctx, cue.Action{Do: cue.Color, Color: "#00ff00"}); err != nil {
				t.Fatal(err)
			}
			const want = `{"on":true,"bri":255,"seg":[{"col":[[0,255,0]],"fx":0}]}`
			isState := func(m mqtttest.Msg) bool { return m.Topic == "wled/stage/api" && m.Payload == want }
			mqtttest.Await(t, all, 10*time.Second, "WLED command", isState)

			before := conn.Connects()
			kick := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("fieldkit-box1").SetAutoReconnect(false))
			if tok := kick.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
				t.Fatalf("kick: %v", tok.Error())
			}
			kick.Disconnect(50)
			testutil.WaitFor(t, 10*time.Second, "reconnect", func() bool { return conn.Connects() > before && conn.Connected() })
			mqtttest.Await(t, all, 10*time.Second, "re-asserted WLED state", isState)
		})
	}
}
