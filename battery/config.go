package battery

import (
	"fmt"
	"net"
	"os"
	"regexp"
	"strings"
	"time"

	"fieldkit/drivers/power"
	"fieldkit/internal/confutil"
	"fieldkit/internal/topic"
)

// Config is the `batteries:` section: one entry per rig.
type Config []Rig

// Rig is one battery to watch.
type Rig struct {
	Name string `yaml:"name"`
	// Source is ina219, ina226, mqtt, nut or sim.
	Source string `yaml:"source"`

	// I2C sources (ina219, ina226).
	Bus         string  `yaml:"bus"`     // board bus name, "" for the board's default
	Address     int     `yaml:"address"` // 0x40-0x4F
	ShuntOhms   float64 `yaml:"shunt_ohms"`
	MaxCurrentA float64 `yaml:"max_current_a"`

	// MQTT telemetry: an absolute topic, and either one value (field +
	// unit) or several (fields).
	Topic  string  `yaml:"topic"`
	Field  string  `yaml:"field"` // dotted JSON path; "" for a plain number
	Unit   string  `yaml:"unit"`  // percent, volts or watts
	Fields []Value `yaml:"fields"`

	// NUT.
	Host         string `yaml:"host"`
	Port         int    `yaml:"port"`
	UPS          string `yaml:"ups"`
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"password_file"`

	// Sim.
	StartPercent float64       `yaml:"start_percent"` // default 60
	Drain        time.Duration `yaml:"drain"`         // full to empty at the sim load; default 20m

	// The pack: a preset, or chemistry and cells (and capacity for TTE from power).
	Preset       string  `yaml:"preset"`
	Chemistry    string  `yaml:"chemistry"`
	Cells        int     `yaml:"cells"`
	CapacityWh   float64 `yaml:"capacity_wh"`
	InternalOhms float64 `yaml:"internal_ohms"`

	Thresholds Thresholds `yaml:"thresholds"`

	Poll       time.Duration `yaml:"poll"`        // default 2s (I2C, sim), 10s (NUT)
	StaleAfter time.Duration `yaml:"stale_after"` // default 5 polls, at least 15s; 2m for MQTT
	Tau        time.Duration `yaml:"tau"`         // EWMA time constant, default 90s
	// HomeAssistant announces the rig to Home Assistant (default true).
	HomeAssistant *bool `yaml:"home_assistant"`
}

// Value is one quantity in an MQTT payload.
type Value struct {
	Field string `yaml:"field"`
	Unit  string `yaml:"unit"`
}

// Thresholds override the default alert levels per rig. An absent key
// keeps the default; 0 turns that threshold off.
type Thresholds struct {
	WarnPercent     *float64       `yaml:"warn_percent"`
	WarnTTE         *time.Duration `yaml:"warn_tte"`
	CriticalPercent *float64       `yaml:"critical_percent"`
	CriticalTTE     *time.Duration `yaml:"critical_tte"`
	SwapTTE         *time.Duration `yaml:"swap_tte"`
	SwapCellVolts   *float64       `yaml:"swap_cell_volts"`
}

// Source kinds.
const (
	KindINA219 = "ina219"
	KindINA226 = "ina226"
	KindMQTT   = "mqtt"
	KindNUT    = "nut"
	KindSim    = "sim"
)

// Units an MQTT value can be in.
const (
	UnitPercent = "percent"
	UnitVolts   = "volts"
	UnitWatts   = "watts"
)

var (
	rigNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)
	upsNameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)
	fieldRE   = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$`)
)

// keysOf says which per-kind keys each source accepts, for "not for this
// source" messages.
var kindKeys = map[string][]string{
	"bus": {KindINA219, KindINA226}, "address": {KindINA219, KindINA226},
	"shunt_ohms": {KindINA219, KindINA226}, "max_current_a": {KindINA219, KindINA226},
	"topic": {KindMQTT}, "field": {KindMQTT}, "unit": {KindMQTT}, "fields": {KindMQTT},
	"host": {KindNUT}, "port": {KindNUT}, "ups": {KindNUT}, "username": {KindNUT}, "password_file": {KindNUT},
	"start_percent": {KindSim}, "drain": {KindSim},
}

// Validate records every problem with the section.
func (c Config) Validate(p *confutil.Problems) {
	seen := map[string]int{}
	for i, r := range c {
		rp := p.At(fmt.Sprintf("[%d]", i))
		if j, dup := seen[r.Name]; dup && r.Name != "" {
			rp.Addf("name", "rig %q is already defined at batteries[%d]; names must be unique", r.Name, j)
		}
		seen[r.Name] = i
		r.validate(rp)
	}
}

func (r Rig) set() map[string]bool {
	return map[string]bool{
		"bus": r.Bus != "", "address": r.Address != 0, "shunt_ohms": r.ShuntOhms != 0, "max_current_a": r.MaxCurrentA != 0,
		"topic": r.Topic != "", "field": r.Field != "", "unit": r.Unit != "", "fields": len(r.Fields) > 0,
		"host": r.Host != "", "port": r.Port != 0, "ups": r.UPS != "", "username": r.Username != "", "password_file": r.PasswordFile != "",
		"start_percent": r.StartPercent != 0, "drain": r.Drain != 0,
	}
}

func (r Rig) validate(p *confutil.Problems) {
	if !rigNameRE.MatchString(r.Name) {
		p.Addf("name", "%q is not a rig name; expected 1-32 lower-case letters, digits, '_' or '-' (it becomes an MQTT topic level)", r.Name)
	}
	switch r.Source {
	case KindINA219, KindINA226, KindMQTT, KindNUT, KindSim:
		for key, isSet := range r.set() {
			if isSet && !contains(kindKeys[key], r.Source) {
				p.Addf(key, "%s is for source %s, not %s", key, strings.Join(kindKeys[key], " or "), r.Source)
			}
		}
	case "":
		p.Addf("source", "missing; expected one of: ina219, ina226, mqtt, nut, sim")
	default:
		p.Addf("source", "unknown source %q; expected one of: ina219, ina226, mqtt, nut, sim", r.Source)
	}
	switch r.Source {
	case KindINA219, KindINA226:
		if r.Address != 0 && (r.Address < 0x40 || r.Address > 0x4F) {
			p.Addf("address", "%#x is not an INA2xx address; expected 0x40-0x4F (64-79)", r.Address)
		}
		if r.ShuntOhms <= 0 || r.ShuntOhms > 10 {
			p.Addf("shunt_ohms", "%v: expected the shunt resistor in ohms, e.g. 0.1 (INA219 breakouts) or 0.002", r.ShuntOhms)
		}
		if r.MaxCurrentA <= 0 || r.MaxCurrentA > 200 {
			p.Addf("max_current_a", "%v: expected the largest current in amperes, e.g. 3.2 or 20", r.MaxCurrentA)
		}
	case KindMQTT:
		if r.Topic == "" {
			p.Addf("topic", "missing; expected the topic the device publishes its battery on")
		} else if err := topic.ValidName(r.Topic); err != nil {
			p.Addf("topic", "%v", err)
		}
		vals, err := r.values()
		if err != nil {
			p.Addf("fields", "%v", err)
		}
		units := map[string]bool{}
		for i, v := range vals {
			key := "fields[" + fmt.Sprint(i) + "]"
			if len(r.Fields) == 0 {
				key = ""
			}
			if v.Field != "" && !fieldRE.MatchString(v.Field) {
				p.Addf(join(key, "field"), "%q: expected a dotted path such as battery.pct, or empty for a plain number", v.Field)
			}
			switch v.Unit {
			case UnitPercent, UnitVolts, UnitWatts:
				if units[v.Unit] {
					p.Addf(join(key, "unit"), "%s is given twice", v.Unit)
				}
				units[v.Unit] = true
			default:
				p.Addf(join(key, "unit"), "unknown unit %q; expected percent, volts or watts", v.Unit)
			}
		}
		if len(vals) > 0 && units[UnitWatts] && !units[UnitPercent] && !units[UnitVolts] {
			p.Addf("unit", "watts alone cannot tell the charge; add a percent or volts value")
		}
	case KindNUT:
		if r.Host == "" {
			p.Addf("host", "missing; expected the upsd host, e.g. 127.0.0.1")
		} else if strings.ContainsAny(r.Host, " /:") && net.ParseIP(r.Host) == nil {
			p.Addf("host", "%q: expected a host name or IP address without a port (set port separately)", r.Host)
		}
		if r.Port < 0 || r.Port > 65535 {
			p.Addf("port", "%d: expected 1-65535 (default 3493)", r.Port)
		}
		if !upsNameRE.MatchString(r.UPS) {
			p.Addf("ups", "%q: expected the UPS name as upsd knows it (upsc -l), letters, digits, '_', '.', '-'", r.UPS)
		}
		if strings.ContainsAny(r.Username, " \r\n\"") {
			p.Addf("username", "must not contain spaces, quotes or line breaks")
		}
		if r.PasswordFile != "" {
			if r.Username == "" {
				p.Addf("password_file", "a password without a username; set username too")
			}
			if _, err := os.Stat(r.PasswordFile); err != nil {
				p.Addf("password_file", "cannot read %s: %v", r.PasswordFile, err)
			}
		}
	case KindSim:
		if r.StartPercent < 0 || r.StartPercent > 100 {
			p.Addf("start_percent", "%v: expected 1-100", r.StartPercent)
		}
		if r.Drain < 0 || r.Drain != 0 && r.Drain < time.Minute {
			p.Addf("drain", "%v: expected how long a full pack lasts in the simulation, at least 1m", r.Drain)
		}
	}
	if _, err := r.pack(); err != nil {
		p.Addf(packKey(r), "%v", err)
	}
	for key, d := range map[string]time.Duration{"poll": r.Poll, "stale_after": r.StaleAfter, "tau": r.Tau} {
		if d < 0 {
			p.Addf(key, "%v cannot be negative", d)
		}
	}
	if r.Poll != 0 && r.Poll < 100*time.Millisecond {
		p.Addf("poll", "%v is too fast; expected at least 100ms", r.Poll)
	}
	if r.Source == KindMQTT && r.Poll != 0 {
		p.Addf("poll", "an MQTT source is not polled; the device decides how often it reports (use stale_after)")
	}
	if r.StaleAfter != 0 && r.Poll != 0 && r.StaleAfter < 2*r.Poll {
		p.Addf("stale_after", "%v is shorter than two polls (%v); a rig would go stale between readings", r.StaleAfter, 2*r.Poll)
	}
	r.Thresholds.validate(p.At("thresholds"))
}

func (t Thresholds) validate(p *confutil.Problems) {
	th := t.apply(power.DefaultThresholds)
	for key, v := range map[string]float64{"warn_percent": th.WarnPercent, "critical_percent": th.CriticalPercent} {
		if v < 0 || v > 100 {
			p.Addf(key, "%v: expected 0-100 (0 turns it off)", v)
		}
	}
	for key, v := range map[string]time.Duration{"warn_tte": th.WarnTTE, "critical_tte": th.CriticalTTE, "swap_tte": th.SwapTTE} {
		if v < 0 {
			p.Addf(key, "%v cannot be negative (0 turns it off)", v)
		}
	}
	if th.SwapCellVolts < 0 || th.SwapCellVolts > 4.5 {
		p.Addf("swap_cell_volts", "%v: expected a cell voltage such as 3.3 (0 turns it off)", th.SwapCellVolts)
	}
	if th.WarnPercent > 0 && th.CriticalPercent > 0 && th.CriticalPercent >= th.WarnPercent {
		p.Addf("critical_percent", "%v is not below warn_percent %v", th.CriticalPercent, th.WarnPercent)
	}
	if th.WarnTTE > 0 && th.CriticalTTE > 0 && th.CriticalTTE >= th.WarnTTE {
		p.Addf("critical_tte", "%v is not shorter than warn_tte %v", th.CriticalTTE, th.WarnTTE)
	}
	if th.CriticalTTE > 0 && th.SwapTTE > 0 && th.SwapTTE >= th.CriticalTTE {
		p.Addf("swap_tte", "%v is not shorter than critical_tte %v", th.SwapTTE, th.CriticalTTE)
	}
}

// apply overlays the set thresholds on base.
func (t Thresholds) apply(base power.Thresholds) power.Thresholds {
	if t.WarnPercent != nil {
		base.WarnPercent = *t.WarnPercent
	}
	if t.WarnTTE != nil {
		base.WarnTTE = *t.WarnTTE
	}
	if t.CriticalPercent != nil {
		base.CriticalPercent = *t.CriticalPercent
	}
	if t.CriticalTTE != nil {
		base.CriticalTTE = *t.CriticalTTE
	}
	if t.SwapTTE != nil {
		base.SwapTTE = *t.SwapTTE
	}
	if t.SwapCellVolts != nil {
		base.SwapCellVolts = *t.SwapCellVolts
	}
	return base
}

// thresholds are the rig's effective thresholds; the swap cell voltage
// defaults by chemistry (LiFePO4 rests at 3.2 V, so 3.3 V would always fire).
func (r Rig) thresholds(pk power.Pack) power.Thresholds {
	base := power.DefaultThresholds
	base.SwapCellVolts = pk.Chemistry.SwapCellVolts
	return r.Thresholds.apply(base)
}

func packKey(r Rig) string {
	if r.Preset != "" {
		return "preset"
	}
	if r.Chemistry != "" {
		return "chemistry"
	}
	return "cells"
}

// pack resolves the preset and overrides.
func (r Rig) pack() (power.Pack, error) {
	var pk power.Pack
	switch {
	case r.Preset != "":
		var ok bool
		pk, ok = power.Presets[r.Preset]
		if !ok {
			return pk, fmt.Errorf("unknown preset %q; expected one of: %s", r.Preset, strings.Join(power.PresetNames(), ", "))
		}
	case r.Chemistry == "" && r.Cells == 0:
		if r.Source == KindMQTT || r.Source == KindNUT {
			// The device reports charge itself: one Li-ion cell is only a
			// placeholder for the curve, never used with a percent source.
			if vals, _ := r.values(); !hasUnit(vals, UnitVolts) {
				return power.Pack{Chemistry: power.LiIon, Cells: 1}, nil
			}
		}
		if r.Source != KindSim {
			return pk, fmt.Errorf("the pack is not described; set preset (%s) or chemistry and cells", strings.Join(power.PresetNames(), ", "))
		}
		pk = power.Presets["vmount-14v"]
	}
	if r.Chemistry != "" {
		c, ok := power.Chemistries[r.Chemistry]
		if !ok {
			return pk, fmt.Errorf("unknown chemistry %q; expected one of: %s", r.Chemistry, strings.Join(power.ChemistryNames(), ", "))
		}
		pk.Chemistry = c
	} else if r.Preset == "" && r.Source != KindSim {
		return pk, fmt.Errorf("cells without chemistry; set chemistry (%s)", strings.Join(power.ChemistryNames(), ", "))
	}
	if r.Cells != 0 {
		pk.Cells = r.Cells
	}
	if r.CapacityWh != 0 {
		pk.CapacityWh = r.CapacityWh
	}
	if r.InternalOhms != 0 {
		pk.InternalOhms = r.InternalOhms
	}
	if err := pk.Validate(); err != nil {
		return pk, err
	}
	if r.Source == KindSim {
		if pk.CapacityWh <= 0 {
			return pk, fmt.Errorf("a simulated pack needs capacity_wh")
		}
		if r.InternalOhms == 0 {
			// The sim drains a pack in minutes, at a load no real pack
			// sustains; scale the resistance so the sag stays a realistic
			// 2 % of the nominal voltage.
			v := pk.Nominal()
			pk.InternalOhms = 0.02 * v * v / r.simWatts(pk)
		}
	}
	return pk, nil
}

// values are the MQTT values, from field+unit and fields.
func (r Rig) values() ([]Value, error) {
	var vals []Value
	if r.Field != "" || r.Unit != "" {
		vals = append(vals, Value{Field: r.Field, Unit: r.Unit})
	}
	vals = append(vals, r.Fields...)
	if r.Source == KindMQTT && len(vals) == 0 {
		return nil, fmt.Errorf("no value; set unit (percent, volts or watts) and field (a JSON path, or none for a plain number)")
	}
	return vals, nil
}

func hasUnit(vals []Value, u string) bool {
	for _, v := range vals {
		if v.Unit == u {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + "." + b
}

func (r Rig) poll() time.Duration {
	switch {
	case r.Poll != 0:
		return r.Poll
	case r.Source == KindNUT:
		return 10 * time.Second
	}
	return 2 * time.Second
}

func (r Rig) staleAfter() time.Duration {
	switch {
	case r.StaleAfter != 0:
		return r.StaleAfter
	case r.Source == KindMQTT:
		return 2 * time.Minute
	}
	return max(5*r.poll(), 15*time.Second)
}

// simWatts is the load that empties the simulated pack in Drain.
func (r Rig) simWatts(pk power.Pack) float64 {
	d := r.Drain
	if d == 0 {
		d = 20 * time.Minute
	}
	return pk.CapacityWh / d.Hours()
}

func (r Rig) homeAssistant() bool { return r.HomeAssistant == nil || *r.HomeAssistant }

// DemoConfig is the battery section of the no-config demo: one simulated
// 14.4 V V-mount pack at 40 % that is empty 20 minutes later (Drain is
// full to empty: 50 minutes), so the gauge visibly falls: warn (25 %)
// after 7.5 minutes, critical (10 %) after 15. Its time-to-empty
// thresholds are off: a pack that lasts 20 minutes is always under them,
// and the demo should show the tiers one by one.
func DemoConfig() Config {
	off := time.Duration(0)
	return Config{{
		Name: "demo-pack", Source: KindSim, Preset: "vmount-14v",
		StartPercent: 40, Drain: 50 * time.Minute,
		Thresholds: Thresholds{WarnTTE: &off, CriticalTTE: &off, SwapTTE: &off},
	}}
}
