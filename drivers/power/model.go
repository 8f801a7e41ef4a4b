package power

import (
	"math"
	"time"
)

// Model is a simulated pack: energy drains with the load, and the
// terminal voltage is the resting voltage at the remaining charge minus
// the drop across the internal resistance. The demo board's sim source
// and the estimator's tests drive it.
type Model struct {
	Pack     Pack
	EnergyWh float64
}

// NewModel returns a model of pack charged to percent.
func NewModel(pack Pack, percent float64) *Model {
	return &Model{Pack: pack, EnergyWh: pack.CapacityWh * percent / 100}
}

// Percent is the true remaining charge.
func (m *Model) Percent() float64 {
	if m.Pack.CapacityWh <= 0 {
		return 0
	}
	return 100 * m.EnergyWh / m.Pack.CapacityWh
}

// Draw takes watts for d out of the pack (never below empty).
func (m *Model) Draw(watts float64, d time.Duration) {
	m.EnergyWh = math.Max(0, m.EnergyWh-watts*d.Hours())
}

// Terminal is the voltage and current at the pack's terminals while it
// delivers watts: V = Voc − I·R with I = P/V, the larger root of
// V² − Voc·V + R·P = 0. A load the pack cannot deliver collapses to Voc/2.
func (m *Model) Terminal(watts float64) (volts, amps float64) {
	voc := m.Pack.Chemistry.Volts(m.Percent()) * float64(m.Pack.Cells)
	r := m.Pack.InternalOhms
	disc := voc*voc - 4*r*watts
	if disc < 0 {
		disc = 0
	}
	volts = (voc + math.Sqrt(disc)) / 2
	if volts <= 0 {
		return 0, 0
	}
	return volts, watts / volts
}

// TTE is the true time to empty at a constant load.
func (m *Model) TTE(watts float64) time.Duration {
	if watts <= 0 {
		return 0
	}
	return time.Duration(m.EnergyWh / watts * float64(time.Hour))
}
