package battery

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fieldkit/battery/source/ina"
	"fieldkit/battery/source/mqttsrc"
	"fieldkit/drivers/power"
	"fieldkit/internal/confutil"
)

type file struct {
	Batteries Config `yaml:"batteries"`
}

func parse(t *testing.T, src string) (Config, error) {
	t.Helper()
	var f file
	d, err := confutil.Decode("agent.yaml", []byte(src), &f)
	if err != nil {
		return nil, err
	}
	p := confutil.NewProblems()
	f.Batteries.Validate(p.At("batteries"))
	return f.Batteries, d.Err(p)
}

func TestConfigGood(t *testing.T) {
	pw := filepath.Join(t.TempDir(), "nut.pw")
	os.WriteFile(pw, []byte("secret\n"), 0o600)
	src := `batteries:
  - name: enc1
    source: ina226
    bus: "1"
    address: 0x41
    shunt_ohms: 0.002
    max_current_a: 20
    preset: vmount-26v
    thresholds: {warn_percent: 30, swap_tte: 0s}
  - name: enc2
    source: ina219
    shunt_ohms: 0.1
    max_current_a: 3.2
    preset: np-f-2s
    poll: 1s
  - name: wearable
    source: mqtt
    topic: wearables/w1/telemetry
    field: battery.pct
    unit: percent
  - name: encoder-v
    source: mqtt
    topic: enc/v
    fields: [{field: bat.v, unit: volts}, {field: load.w, unit: watts}]
    chemistry: lipo
    cells: 4
    capacity_wh: 95
  - name: rack
    source: nut
    host: 127.0.0.1
    ups: rackups
    username: monitor
    password_file: ` + pw + `
  - name: demo
    source: sim
    start_percent: 40
    drain: 20m
`
	c, err := parse(t, src)
	if err != nil {
		t.Fatal(err)
	}
	if ic, _ := c[0].Settings.(*ina.Config); len(c) != 6 || ic == nil || ic.Address != 0x41 || *c[0].Thresholds.WarnPercent != 30 || *c[0].Thresholds.SwapTTE != 0 {
		t.Fatalf("decoded %+v", c[0])
	}
	th := c[0].thresholds(mustPack(t, c[0]))
	if th.WarnPercent != 30 || th.SwapTTE != 0 || th.WarnTTE != 20*time.Minute || th.SwapCellVolts != 3.3 {
		t.Fatalf("thresholds %+v", th)
	}
	if c[1].poll() != time.Second || c[1].staleAfter() != 15*time.Second || c[2].staleAfter() != 2*time.Minute || c[4].poll() != 10*time.Second {
		t.Fatal("poll/stale defaults")
	}
	if pk := mustPack(t, c[3]); pk.Cells != 4 || pk.CapacityWh != 95 || pk.Chemistry.Name != "lipo" {
		t.Fatalf("pack %+v", pk)
	}
	if pk := mustPack(t, c[5]); pk.Cells != 4 || pk.InternalOhms <= 0 || pk.InternalOhms > 0.02 {
		t.Fatalf("sim pack %+v", pk)
	}
	p := confutil.NewProblems()
	DemoConfig().Validate(p)
	if !p.Empty() {
		t.Fatalf("demo config: %v", p.List())
	}
}

func mustPack(t *testing.T, r Rig) (pk power.Pack) {
	t.Helper()
	pk, err := r.pack()
	if err != nil {
		t.Fatal(err)
	}
	return pk
}

func TestConfigBad(t *testing.T) {
	cases := []struct{ name, src, want string }{
		{"unknown key", "batteries:\n  - name: a\n    source: sim\n    shunt: 1\n", `agent.yaml:4: unknown key "shunt" in batteries[0]`},
		{"bad name", "batteries:\n  - name: Enc 1\n    source: sim\n", `agent.yaml:2: batteries[0].name: "Enc 1" is not a rig name`},
		{"duplicate", "batteries:\n  - {name: a, source: sim}\n  - {name: a, source: sim}\n", `agent.yaml:3: batteries[1].name: rig "a" is already defined`},
		{"no source", "batteries:\n  - name: a\n", `batteries[0].source: missing`},
		{"unknown source", "batteries:\n  - name: a\n    source: ina260\n", `agent.yaml:3: batteries[0].source: unknown source "ina260"`},
		{"key for another kind", "batteries:\n  - name: a\n    source: sim\n    topic: x/y\n", `agent.yaml:4: batteries[0].topic: topic is for source mqtt, not sim`},
		{"bad address", "batteries:\n  - {name: a, source: ina226, address: 0x70, shunt_ohms: 0.002, max_current_a: 20, preset: vmount-26v}\n", `address: 0x70 is not an INA2xx address`},
		{"no shunt", "batteries:\n  - {name: a, source: ina219, max_current_a: 2, preset: np-f-2s}\n", `shunt_ohms: 0: expected the shunt resistor`},
		{"no pack for ina", "batteries:\n  - {name: a, source: ina219, shunt_ohms: 0.1, max_current_a: 2}\n", `the pack is not described`},
		{"bad preset", "batteries:\n  - {name: a, source: sim, preset: vmount-48v}\n", `unknown preset "vmount-48v"; expected one of: np-f-2s, vmount-14v, vmount-26v`},
		{"bad chemistry", "batteries:\n  - {name: a, source: sim, chemistry: nimh, cells: 6, capacity_wh: 20}\n", `unknown chemistry "nimh"`},
		{"mqtt no unit", "batteries:\n  - {name: a, source: mqtt, topic: x/y, field: pct}\n", `unknown unit ""`},
		{"mqtt wildcard", "batteries:\n  - {name: a, source: mqtt, topic: x/+/y, unit: percent}\n", `batteries[0].topic:`},
		{"mqtt bad field", "batteries:\n  - {name: a, source: mqtt, topic: x, field: 'a..b', unit: percent}\n", `"a..b": expected a dotted path`},
		{"mqtt watts alone", "batteries:\n  - {name: a, source: mqtt, topic: x, unit: watts}\n", `watts alone cannot tell the charge`},
		{"mqtt poll", "batteries:\n  - {name: a, source: mqtt, topic: x, unit: percent, poll: 1s}\n", `an MQTT source is not polled`},
		{"nut no ups", "batteries:\n  - {name: a, source: nut, host: 127.0.0.1}\n", `batteries[0].ups: "": expected the UPS name`},
		{"nut port in host", "batteries:\n  - {name: a, source: nut, host: 'h:3493', ups: u}\n", `without a port`},
		{"nut missing password file", "batteries:\n  - {name: a, source: nut, host: h, ups: u, username: m, password_file: /nonexistent/pw}\n", `cannot read /nonexistent/pw`},
		{"thresholds order", "batteries:\n  - name: a\n    source: sim\n    thresholds:\n      critical_percent: 30\n", `agent.yaml:5: batteries[0].thresholds.critical_percent: 30 is not below warn_percent 25`},
		{"threshold range", "batteries:\n  - {name: a, source: sim, thresholds: {warn_percent: 120}}\n", `warn_percent: 120: expected 0-100`},
		{"bad duration", "batteries:\n  - {name: a, source: sim, thresholds: {warn_tte: soon}}\n", `"soon" is text, expected a duration`},
		{"stale shorter than poll", "batteries:\n  - {name: a, source: sim, poll: 10s, stale_after: 15s}\n", `stale_after: 15s is shorter than two polls`},
		{"unknown threshold", "batteries:\n  - name: a\n    source: sim\n    thresholds: {warn_pct: 3}\n", `agent.yaml:4: unknown key "warn_pct" in batteries[0].thresholds`},
		{"unknown value key", "batteries:\n  - name: a\n    source: mqtt\n    topic: x\n    fields:\n      - {field: a, unit: volts, scale: 2}\n", `agent.yaml:6: unknown key "scale" in batteries[0].fields[0]`},
		{"key of two sources", "batteries:\n  - {name: a, source: sim, bus: '1'}\n", `batteries[0].bus: bus is for source ina219 or ina226, not sim`},
		{"sim drain", "batteries:\n  - {name: a, source: sim, drain: 10s}\n", `drain: 10s: expected how long`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := parse(t, c.src)
			if err == nil {
				t.Fatalf("accepted:\n%s", c.src)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got  %v\nwant %s", err, c.want)
			}
		})
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	_, err := New(Config{{Name: "a", Source: "usb"}}, Deps{})
	if err == nil || !strings.Contains(err.Error(), "batteries[0].source") {
		t.Fatalf("New: %v", err)
	}
	if _, err := New(Config{{Name: "a", Source: KindINA219, Settings: &ina.Config{ShuntOhms: 0.1, MaxCurrentA: 2}, Preset: "np-f-2s"}}, Deps{}); err == nil {
		t.Fatal("an I2C rig without a board was accepted")
	}
	if _, err := New(Config{{Name: "a", Source: KindMQTT, Settings: &mqttsrc.Config{Topic: "x", Unit: mqttsrc.UnitPercent}}}, Deps{}); err == nil {
		t.Fatal("an MQTT rig without MQTT was accepted")
	}
}

// Every registered source decodes into a config of its own type, and a
// source added with one registry line is decoded, validated and opened.
func TestSourceRegistry(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range registry {
		if seen[s.name] {
			t.Errorf("source %s registered twice", s.name)
		}
		seen[s.name] = true
		if a, b := s.new(), s.new(); a == b || len(confutil.KeysOf(a)) == 0 {
			t.Errorf("source %s: new gives %p and %p with keys %v", s.name, a, b, confutil.KeysOf(a))
		}
		for _, k := range confutil.KeysOf(s.new()) {
			if contains(confutil.KeysOf(&Rig{}), k) {
				t.Errorf("source %s reads %s, which every rig has", s.name, k)
			}
		}
	}
}

// The rigs decoder never panics, and what it accepts has source settings
// exactly when the source is registered.
func FuzzDecodeRigs(f *testing.F) {
	f.Add("batteries:\n  - {name: a, source: sim, start_percent: 40}\n")
	f.Add("batteries:\n  - name: a\n    source: mqtt\n    topic: x\n    fields: [{field: a.b, unit: volts, extra: 1}]\n")
	f.Add("batteries:\n  - {name: a, source: nut, host: h, ups: u, shunt_ohms: 3}\n")
	f.Add("batteries:\n  - {name: a, source: ina260, bus: '1'}\n")
	f.Add("batteries:\n  - {name: a, source: sim, thresholds: {warn_pct: 3}}\n")
	f.Add("batteries: {a: 1}\n")
	f.Add("batteries:\n  - &r {name: a, source: sim}\n  - *r\n")
	f.Fuzz(func(t *testing.T, y string) {
		var fl file
		doc, err := confutil.Decode("agent.yaml", []byte(y), &fl)
		if err != nil {
			return
		}
		for i, r := range fl.Batteries {
			if (r.Settings == nil) != (newSourceConfig(r.Source) == nil) {
				t.Fatalf("rig %d of source %q decoded to %#v", i, r.Source, r.Settings)
			}
		}
		p := confutil.NewProblems()
		fl.Batteries.Validate(p.At("batteries"))
		_ = doc.Err(p)
	})
}
