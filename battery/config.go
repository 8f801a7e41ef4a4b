package battery

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"fieldkit/battery/source"
	"fieldkit/battery/source/sim"
	"fieldkit/drivers/power"
	"fieldkit/internal/confutil"
)

// Config is the `batteries:` section: one entry per rig.
type Config []Rig

// Rig is one battery to watch: what every source shares, and the
// source's own settings, decoded from the same entry into the source's
// type (see sources.go).
type Rig struct {
	Name string `yaml:"name"`
	// Source is the source's name: ina219, ina226, mqtt, nut or sim.
	Source string `yaml:"source"`
	// Settings are the source's own keys; nil when Source names no
	// source (Validate reports that).
	Settings source.Config `yaml:"-"`

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

// Source names.
const (
	KindINA219 = "ina219"
	KindINA226 = "ina226"
	KindMQTT   = "mqtt"
	KindNUT    = "nut"
	KindSim    = "sim"
)

var rigNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

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

func (r Rig) validate(p *confutil.Problems) {
	if !rigNameRE.MatchString(r.Name) {
		p.Addf("name", "%q is not a rig name; expected 1-32 lower-case letters, digits, '_' or '-' (it becomes an MQTT topic level)", r.Name)
	}
	switch {
	case r.Settings != nil:
		r.Settings.Validate(p)
	case r.Source == "":
		p.Addf("source", "missing; expected one of: %s", strings.Join(Sources, ", "))
	default:
		p.Addf("source", "unknown source %q; expected one of: %s", r.Source, strings.Join(Sources, ", "))
	}
	if r.Settings == nil {
		return
	}
	if _, err := r.pack(); err != nil {
		p.Addf(r.packSpec().Key(), "%v", err)
	}
	for key, d := range map[string]time.Duration{"poll": r.Poll, "stale_after": r.StaleAfter, "tau": r.Tau} {
		if d < 0 {
			p.Addf(key, "%v cannot be negative", d)
		}
	}
	if r.Poll != 0 && r.Poll < 100*time.Millisecond {
		p.Addf("poll", "%v is too fast; expected at least 100ms", r.Poll)
	}
	if r.Settings.Poll() == 0 && r.Poll != 0 {
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

func (r Rig) packSpec() source.PackSpec {
	return source.PackSpec{Preset: r.Preset, Chemistry: r.Chemistry, Cells: r.Cells, CapacityWh: r.CapacityWh, InternalOhms: r.InternalOhms}
}

// pack resolves the preset and overrides, as the source completes it.
func (r Rig) pack() (power.Pack, error) {
	if r.Settings == nil {
		return power.Pack{}, fmt.Errorf("no source")
	}
	return r.Settings.Pack(r.packSpec())
}

// pushed reports whether the source is not polled but publishes.
func (r Rig) pushed() bool { return r.Settings != nil && r.Settings.Poll() == 0 }

func (r Rig) poll() time.Duration {
	switch {
	case r.Poll != 0:
		return r.Poll
	case r.Settings != nil && r.Settings.Poll() > 0:
		return r.Settings.Poll()
	}
	return 2 * time.Second
}

func (r Rig) staleAfter() time.Duration {
	switch {
	case r.StaleAfter != 0:
		return r.StaleAfter
	case r.pushed():
		return 2 * time.Minute
	}
	return max(5*r.poll(), 15*time.Second)
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
		Settings:   &sim.Config{StartPercent: 40, Drain: 50 * time.Minute},
		Thresholds: Thresholds{WarnTTE: &off, CriticalTTE: &off, SwapTTE: &off},
	}}
}
