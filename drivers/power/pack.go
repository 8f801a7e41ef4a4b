package power

import (
	"fmt"
	"math"
	"sort"
	"strings"
)

// Chemistry is a cell chemistry with its resting (open-circuit) voltage
// curve.
type Chemistry struct {
	Name string
	// Nominal cell voltage.
	Nominal float64
	// Curve maps resting cell voltage to charge, ascending in both.
	Curve []CurvePoint
	// SwapCellVolts is the default "swap now" cell voltage under load.
	SwapCellVolts float64
}

// CurvePoint is one point of a resting-voltage curve.
type CurvePoint struct {
	Volts   float64 // per cell, at rest
	Percent float64
}

// The curves are typical resting voltages of commercial cells after a
// rest, read from public discharge data at C/5; packs differ by a few
// tens of millivolts, which is why energy counting takes over as soon as
// power is known.
var (
	LiIon = Chemistry{Name: "li-ion", Nominal: 3.6, SwapCellVolts: 3.3, Curve: []CurvePoint{
		{3.00, 0}, {3.30, 5}, {3.45, 10}, {3.55, 20}, {3.62, 30}, {3.68, 40},
		{3.73, 50}, {3.79, 60}, {3.86, 70}, {3.95, 80}, {4.05, 90}, {4.20, 100},
	}}
	LiPo = Chemistry{Name: "lipo", Nominal: 3.7, SwapCellVolts: 3.3, Curve: []CurvePoint{
		{3.27, 0}, {3.61, 5}, {3.69, 10}, {3.73, 20}, {3.77, 30}, {3.79, 40},
		{3.82, 50}, {3.87, 60}, {3.92, 70}, {3.98, 80}, {4.06, 90}, {4.20, 100},
	}}
	// LiFePO4's curve is nearly flat between 20 % and 80 %: a voltage-only
	// estimate there is coarse; give the rig a current sensor.
	LiFePO4 = Chemistry{Name: "lifepo4", Nominal: 3.2, SwapCellVolts: 2.9, Curve: []CurvePoint{
		{2.50, 0}, {2.90, 5}, {3.00, 10}, {3.20, 20}, {3.25, 30}, {3.26, 40},
		{3.27, 50}, {3.28, 60}, {3.30, 70}, {3.32, 80}, {3.35, 90}, {3.60, 100},
	}}
)

// Chemistries by config name.
var Chemistries = map[string]Chemistry{"li-ion": LiIon, "lipo": LiPo, "lifepo4": LiFePO4}

// Percent is the charge at resting cell voltage v, clamped to 0-100.
func (c Chemistry) Percent(v float64) float64 {
	pts := c.Curve
	if v <= pts[0].Volts {
		return 0
	}
	if v >= pts[len(pts)-1].Volts {
		return 100
	}
	i := sort.Search(len(pts), func(i int) bool { return pts[i].Volts >= v })
	a, b := pts[i-1], pts[i]
	return a.Percent + (v-a.Volts)/(b.Volts-a.Volts)*(b.Percent-a.Percent)
}

// Volts is the resting cell voltage at charge p (the curve's inverse).
func (c Chemistry) Volts(p float64) float64 {
	pts := c.Curve
	p = math.Max(0, math.Min(100, p))
	i := sort.Search(len(pts), func(i int) bool { return pts[i].Percent >= p })
	if i == 0 {
		return pts[0].Volts
	}
	a, b := pts[i-1], pts[i]
	return a.Volts + (p-a.Percent)/(b.Percent-a.Percent)*(b.Volts-a.Volts)
}

// Pack is a battery: chemistry, cells in series, usable energy and
// internal resistance (for load correction).
type Pack struct {
	Chemistry    Chemistry
	Cells        int
	CapacityWh   float64
	InternalOhms float64
}

// Nominal is the pack's nominal voltage.
func (p Pack) Nominal() float64 { return p.Chemistry.Nominal * float64(p.Cells) }

// Presets are the packs camera crews carry.
//
//   - np-f-2s: Sony NP-F970-style 2S Li-ion, 7.2 V nominal, 8.4 V full, 47 Wh.
//   - vmount-14v: 14.4 V V-mount, 4S Li-ion, 16.8 V full, 98 Wh (the
//     airline limit most packs are built to).
//   - vmount-26v: 26 V-class V-mount, taken as 7S Li-ion: 25.2 V nominal,
//     29.4 V full, 98 Wh. 26 V packs are sold as 25.2-26.4 V nominal,
//     which is 7 cells at 3.6-3.7 V; full charge is over the INA219's 26 V
//     limit, so measure them with an INA226.
var Presets = map[string]Pack{
	"np-f-2s":    {Chemistry: LiIon, Cells: 2, CapacityWh: 47, InternalOhms: 0.12},
	"vmount-14v": {Chemistry: LiIon, Cells: 4, CapacityWh: 98, InternalOhms: 0.10},
	"vmount-26v": {Chemistry: LiIon, Cells: 7, CapacityWh: 98, InternalOhms: 0.15},
}

// PresetNames lists the presets, sorted.
func PresetNames() []string { return sortedKeys(Presets) }

// ChemistryNames lists the chemistries, sorted.
func ChemistryNames() []string { return sortedKeys(Chemistries) }

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Validate reports what is wrong with p, or nil.
func (p Pack) Validate() error {
	var probs []string
	if len(p.Chemistry.Curve) < 2 {
		probs = append(probs, "no chemistry")
	}
	if p.Cells < 1 || p.Cells > 16 {
		probs = append(probs, fmt.Sprintf("cells %d: expected 1-16", p.Cells))
	}
	if p.CapacityWh < 0 {
		probs = append(probs, "capacity cannot be negative")
	}
	if p.InternalOhms < 0 {
		probs = append(probs, "internal resistance cannot be negative")
	}
	if len(probs) > 0 {
		return fmt.Errorf("pack: %s", strings.Join(probs, "; "))
	}
	return nil
}
