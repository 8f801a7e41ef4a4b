package battery

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"testing"
	"time"

	"fieldkit/battery/source/ina"
)

// render renders Home Assistant templates with Jinja2 (the engine Home
// Assistant's templates are), value_json being the decoded payload as in
// Home Assistant's MQTT integration. Skips when Debian's python3-jinja2
// is missing (scripts/test.sh installs it).
func render(t *testing.T, cases [][2]string) []string {
	t.Helper()
	py := "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		t.Skip("no /usr/bin/python3")
	}
	if exec.Command(py, "-c", "import jinja2").Run() != nil {
		t.Skip("python3-jinja2 not installed: scripts/test.sh installs it")
	}
	const script = `
import json, sys, jinja2
env = jinja2.Environment()
out = []
for tpl, payload in json.load(sys.stdin):
    out.append(env.from_string(tpl).render(value=payload, value_json=json.loads(payload)))
json.dump(out, sys.stdout)
`
	in, _ := json.Marshal(cases)
	cmd := exec.Command(py, "-c", script)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("jinja2: %v\n%s", err, stderr.String())
	}
	var out []string
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// The discovery templates, rendered by Jinja2 against the state payloads
// the watch publishes: the values Home Assistant shows, "None" (which it
// takes as unknown) for a time to empty still calculating, and the rig
// unavailable while stale.
func TestDiscoveryTemplatesRender(t *testing.T) {
	ds := discovery("box1", "fieldkit/box1", "", Rig{Name: "enc1", Source: KindINA226, Settings: &ina.Config{}})
	cfg := func(q string) haSensor {
		var s haSensor
		if err := json.Unmarshal(ds["homeassistant/sensor/fieldkit_box1/enc1_"+q+"/config"], &s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	at := time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)
	pct, v, w, tte := 27.5, 14.62, 38.1, int64(1260)
	fresh, _ := json.Marshal(State{Rig: "enc1", Percent: &pct, Volts: &v, Watts: &w, TTES: &tte, Level: "ok", Source: "ina226", Updated: &at})
	calculating, _ := json.Marshal(State{Rig: "enc1", Percent: &pct, Level: "ok", Source: "ina226", Updated: &at, Calculating: true})
	stale, _ := json.Marshal(State{Rig: "enc1", Percent: &pct, Level: "ok", Source: "ina226", Updated: &at, Stale: true})

	charge, tteS, volts, power := cfg("charge"), cfg("tte"), cfg("voltage"), cfg("power")
	avail := charge.Availability[1]
	if avail.Topic != charge.StateTopic {
		t.Fatalf("rig availability on %s, state on %s", avail.Topic, charge.StateTopic)
	}
	got := render(t, [][2]string{
		{charge.ValueTemplate, string(fresh)},
		{tteS.ValueTemplate, string(fresh)},
		{volts.ValueTemplate, string(fresh)},
		{power.ValueTemplate, string(fresh)},
		{tteS.ValueTemplate, string(calculating)},
		{avail.ValueTemplate, string(fresh)},
		{avail.ValueTemplate, string(stale)},
	})
	want := []string{"27.5", "1260", "14.62", "38.1", "None", avail.PayloadAvailable, avail.PayloadNotAvailable}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("template %d rendered %q, want %q", i, got[i], want[i])
		}
	}
}
