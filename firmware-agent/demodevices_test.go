package main

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"fieldkit/boards"
	"fieldkit/drivers/cue"
	"fieldkit/firmware-agent/config"
	"fieldkit/internal/mqtttest"
	"fieldkit/internal/testutil"
	"fieldkit/scenes"
)

// A newcomer's first run shows a working show: in the demo, simulated
// devices answer for its WLED, Tasmota and wearable outputs, so
// drop-countdown runs to done with each of their commands confirmed, and
// the crew page lists no failed output. (The scene is a minute long.)
func TestDemoDropCountdownConfirmed(t *testing.T) {
	t.Parallel() // a minute of waiting that shares nothing with the others
	mqttAddr := mqtttest.FreePort(t)
	p := startAgent(t, nil, "--mqtt-listen", mqttAddr)
	p.waitHealthy(t, 10*time.Second)
	testutil.WaitFor(t, 10*time.Second, "the log line on the simulated devices", func() bool {
		return strings.Contains(p.log.String(), "simulated on the embedded broker")
	})

	resp, err := http.Post("http://"+p.http+"/api/scenes/drop-countdown/run", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("run drop-countdown: %s", resp.Status)
	}

	simulated := []string{"wled_stage", "tasmota_spot", "presenter"}
	var d scenes.Detail
	var seen map[string]int // simulated output → its commands confirmed
	testutil.WaitFor(t, 90*time.Second, "drop-countdown done with its device outputs confirmed", func() bool {
		d = scenes.Detail{}
		getJSON(t, "http://"+p.http+"/api/scenes/drop-countdown", &d)
		if d.LastRun == nil {
			return false
		}
		if d.LastRun.State == scenes.StateFailed || d.LastRun.State == scenes.StateCancelled {
			t.Fatalf("drop-countdown ended %s: %s", d.LastRun.State, d.LastRun.Reason)
		}
		if d.LastRun.State != scenes.StateDone {
			return false
		}
		seen = map[string]int{}
		for _, st := range d.LastRun.Steps {
			for _, o := range st.Outputs {
				if !slices.Contains(simulated, o.Output) {
					continue
				}
				if o.Status == cue.Failed {
					t.Fatalf("step %d %s failed: %s", st.Step, o.Output, o.Error)
				}
				if o.Status != cue.Confirmed {
					return false
				}
				seen[o.Output]++
			}
		}
		return true
	})
	// The scene's own steps: WLED and Tasmota at 0 s and 60 s, the
	// wearable at 30, 50 and 60 s.
	if want := map[string]int{"wled_stage": 2, "tasmota_spot": 2, "presenter": 3}; fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Errorf("confirmed commands per output %v, want %v", seen, want)
	}
	for _, st := range d.LastRun.Steps {
		for _, o := range st.Outputs {
			if o.Status == cue.Confirmed && (o.Confirmed == nil || o.LandedUS == nil) {
				t.Errorf("step %d %s confirmed without its time: %+v", st.Step, o.Output, o)
			}
		}
	}

	// The crew page's list shows the scene done, no output in red.
	var l scenes.List
	getJSON(t, "http://"+p.http+"/api/scenes", &l)
	for _, s := range l.Scenes {
		if s.Name == "drop-countdown" && (s.Status.State != scenes.StateDone || len(s.Failed) > 0) {
			t.Errorf("crew page: drop-countdown %s, failed %q", s.Status.State, s.Failed)
		}
	}
}

// Only the demo simulates devices: an agent started with a config file,
// even the demo's own on the embedded broker, talks to real ones.
func TestDemoDevicesOnlyInTheDemo(t *testing.T) {
	for _, file := range []string{"", "agent.yaml"} {
		cfg, err := config.Parse("demo.yaml", demoYAML)
		if err != nil {
			t.Fatal(err)
		}
		cfg.File, cfg.DataDir = file, t.TempDir()
		cfg.HTTP.Listen, cfg.MQTT.Listen = mqtttest.FreePort(t), mqtttest.FreePort(t)
		a, err := build(cfg, discardLogger(), boards.NewSim(cfg.Pins))
		if err != nil {
			t.Fatal(err)
		}
		var sim *demoDevices
		for _, p := range a.parts {
			if d, ok := p.(*demoDevices); ok {
				sim = d
			}
		}
		a.close()
		switch {
		case file != "" && sim != nil:
			t.Errorf("config file %s: simulated devices built", file)
		case file == "" && sim == nil:
			t.Error("demo: no simulated devices")
		case file == "":
			var got []string
			for _, x := range sim.devs {
				got = append(got, x.output+" "+x.dev.Kind+" "+x.dev.Topic+x.wearable)
			}
			want := []string{"presenter  presenter", "tasmota_spot tasmota stage-spot", "wled_stage wled wled/stage"}
			if !slices.Equal(got, want) {
				t.Errorf("demo simulates %q, want %q", got, want)
			}
		}
	}
}
