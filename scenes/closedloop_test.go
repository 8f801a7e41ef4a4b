package scenes

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio/gpiotest"

	"fieldkit/drivers/cue"
	"fieldkit/drivers/gpioout"
	"fieldkit/drivers/mqttdev"
	"fieldkit/internal/bus"
	"fieldkit/internal/devsim"
	"fieldkit/internal/mqttc"
	"fieldkit/internal/mqtttest"
	"fieldkit/internal/testutil"
)

// A scene step on real outputs, on a real Mosquitto with simulated
// devices: the run record says per output what became of its command.
// A WLED and a GPIO lamp confirm; a Shelly that answers "no such
// channel" fails with its message; an unplugged Zigbee bulb fails after
// its deadline and raises an alert; once it is back, it is told the
// state it should have.
func TestRunRecordOnRealDevices(t *testing.T) {
	url := mqtttest.StartMosquitto(t).URL()
	conn := mqttc.New(mqttc.Options{URL: url, ClientID: "fieldkit-box1", Prefix: "fieldkit/box1", MaxReconnect: 300 * time.Millisecond, Log: quietLog()})
	ctx, cancel := context.WithCancel(context.Background())
	connDone := make(chan error, 1)
	go func() { connDone <- conn.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-connDone })
	b := bus.New(quietLog())
	alerts := b.Subscribe("cue/+/alert", 8)
	defer alerts.Close()

	sim := func(d devsim.Device, lat time.Duration) *devsim.Sim {
		s, err := devsim.Start(url, "sim-"+d.Topic, d, lat)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		return s
	}
	sim(devsim.Device{Kind: "wled", Topic: "wled/stage"}, 5*time.Millisecond)
	sim(devsim.Device{Kind: "shelly", Topic: "shellypro4pm-1", Channel: 7}, 5*time.Millisecond).FailRPC("Argument 'id', value 7 not found!")
	bulb := sim(devsim.Device{Kind: "z2m", Topic: "desk"}, 5*time.Millisecond)
	bulb.Mute(true)
	if err := bulb.SetOnline(false); err != nil {
		t.Fatal(err)
	}

	targets := map[string]cue.Target{}
	devs := map[string]*mqttdev.Device{}
	for _, o := range []mqttdev.Opts{
		{Name: "stage", Kind: mqttdev.WLED, Topic: "wled/stage"},
		{Name: "relay", Kind: mqttdev.Shelly, Topic: "shellypro4pm-1", Channel: 7},
		{Name: "bulb", Kind: mqttdev.Z2M, Topic: "desk", Deadline: 200 * time.Millisecond},
	} {
		o.Bus, o.Log = b, quietLog()
		d, err := mqttdev.NewDevice(conn, &o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		targets[o.Name], devs[o.Name] = d, d
	}
	lamp, err := gpioout.New(&gpiotest.Pin{N: "GPIO17"}, &gpioout.Opts{Name: "cue", Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	targets["cue"] = lamp

	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"show.yaml": "name: show\nsteps:\n  - {at: 0s, targets: [stage, relay, bulb, cue], do: \"on\"}\n"})
	e, err := New(Config{Dir: dir}, Deps{Targets: targets, MQTT: conn, Bus: b, Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	engDone := make(chan error, 1)
	go func() { engDone <- e.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-engDone })

	testutil.WaitFor(t, 10*time.Second, "connected", conn.Connected)
	for _, n := range []string{"stage", "relay"} {
		d := devs[n]
		testutil.WaitFor(t, 10*time.Second, n+" online", func() bool { return d.State().(mqttdev.State).Feedback.Link == "online" })
	}
	testutil.WaitFor(t, 10*time.Second, "bulb offline", func() bool { return devs["bulb"].State().(mqttdev.State).Feedback.Link == "offline" })
	testutil.WaitFor(t, 10*time.Second, "engine running", func() bool { _, err := e.Fire("show", "test", nil); return err == nil })

	outputs := func() map[string]TargetRecord {
		d, _ := e.Get("show")
		out := map[string]TargetRecord{}
		if d.LastRun != nil {
			for _, o := range d.LastRun.Steps[0].Outputs {
				out[o.Output] = o
			}
		}
		return out
	}
	testutil.WaitFor(t, 15*time.Second, "every output settled", func() bool {
		o := outputs()
		return o["stage"].Status == cue.Confirmed && o["cue"].Status == cue.Confirmed &&
			o["relay"].Status == cue.Failed && o["bulb"].Status == cue.Failed
	})
	o := outputs()
	for _, n := range []string{"stage", "cue"} {
		if o[n].Sent == nil || o[n].Confirmed == nil || o[n].Confirmed.Before(*o[n].Sent) || o[n].Error != "" {
			t.Errorf("%s: %+v", n, o[n])
		}
	}
	if !strings.Contains(o["relay"].Error, "Argument 'id', value 7 not found!") {
		t.Errorf("relay: %+v", o["relay"])
	}
	if !strings.Contains(o["bulb"].Error, "no confirmation within 200ms after 2 sends; device offline since") {
		t.Errorf("bulb: %+v", o["bulb"])
	}
	testutil.WaitFor(t, 10*time.Second, "run failed", func() bool {
		d, _ := e.Get("show")
		return d.Status.State == StateFailed && d.LastRun.State == StateFailed
	})
	if l := e.List(); len(l.Scenes[0].Failed) != 2 {
		t.Errorf("failed outputs on the list: %q", l.Scenes[0].Failed)
	}
	seen := map[string]bool{}
	for len(seen) < 2 {
		select {
		case ev := <-alerts.C():
			var a struct{ Output, Reason string }
			if err := json.Unmarshal(ev.Payload, &a); err != nil {
				t.Fatal(err)
			}
			seen[ev.Topic] = true
		case <-time.After(10 * time.Second):
			t.Fatalf("alerts seen: %v; want cue/relay/alert and cue/bulb/alert", seen)
		}
	}
	if !seen["cue/relay/alert"] || !seen["cue/bulb/alert"] {
		t.Errorf("alerts %v", seen)
	}

	// Plugged in again: the bulb is told to be on, and confirms it.
	before := len(bulb.Commands())
	bulb.Mute(false)
	if err := bulb.SetOnline(true); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, "bulb re-asserted and confirmed", func() bool {
		f := devs["bulb"].State().(mqttdev.State).Feedback
		return len(bulb.Commands()) > before && f.Confirmed != nil && f.Confirmed.On
	})
	if got := bulb.Commands()[before]; got != `zigbee2mqtt/desk/set {"state":"ON","brightness":254}` {
		t.Errorf("re-asserted %q", got)
	}
}
