// Package sim is the battery source sim: a simulated pack that drains
// at a constant load, for the demo and for trying thresholds out.
package sim

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"fieldkit/battery/source"
	"fieldkit/drivers/power"
	"fieldkit/internal/clock"
	"fieldkit/internal/confutil"
)

// Config is a simulated rig.
type Config struct {
	StartPercent float64       `yaml:"start_percent"` // default 60
	Drain        time.Duration `yaml:"drain"`         // full to empty at the sim load; default 20m
}

// New is a config to decode into.
func New() source.Config { return &Config{} }

func (c *Config) Validate(p *confutil.Problems) {
	if c.StartPercent < 0 || c.StartPercent > 100 {
		p.Addf("start_percent", "%v: expected 1-100", c.StartPercent)
	}
	if c.Drain < 0 || c.Drain != 0 && c.Drain < time.Minute {
		p.Addf("drain", "%v: expected how long a full pack lasts in the simulation, at least 1m", c.Drain)
	}
}

// Pack: a rig that describes no pack simulates a 14.4 V V-mount.
func (c *Config) Pack(s source.PackSpec) (power.Pack, error) {
	base := power.Presets["vmount-14v"]
	pk, err := source.ResolvePack(s, source.PackDefaults{Base: &base})
	if err != nil {
		return pk, err
	}
	if pk.CapacityWh <= 0 {
		return pk, fmt.Errorf("a simulated pack needs capacity_wh")
	}
	if s.InternalOhms == 0 {
		// The sim drains a pack in minutes, at a load no real pack
		// sustains; scale the resistance so the sag stays a realistic
		// 2 % of the nominal voltage.
		v := pk.Nominal()
		pk.InternalOhms = 0.02 * v * v / c.watts(pk)
	}
	return pk, nil
}

func (c *Config) Poll() time.Duration { return 2 * time.Second }

func (c *Config) Open(env source.Env) (any, error) {
	return NewSource(*c, env.Rig, env.Pack, env.Clock), nil
}

// watts is the load that empties the simulated pack in Drain.
func (c Config) watts(pk power.Pack) float64 {
	d := c.Drain
	if d == 0 {
		d = 20 * time.Minute
	}
	return pk.CapacityWh / d.Hours()
}

// Source is a simulated pack discharging at a constant load on the
// injected clock, with a little measurement noise.
type Source struct {
	mu    sync.Mutex
	clk   clock.Clock
	m     *power.Model
	watts float64
	last  time.Time
	rng   *rand.Rand
}

// NewSource simulates the pack pk of the rig called rig.
func NewSource(c Config, rig string, pk power.Pack, clk clock.Clock) *Source {
	start := c.StartPercent
	if start == 0 {
		start = 60
	}
	return &Source{clk: clk, m: power.NewModel(pk, start), watts: c.watts(pk), rng: rand.New(rand.NewPCG(uint64(len(rig)), 1))}
}

func (s *Source) Poll(context.Context) (power.Sample, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clk.Now()
	if !s.last.IsZero() && now.After(s.last) {
		s.m.Draw(s.watts, now.Sub(s.last))
	}
	s.last = now
	smp := power.NewSample(now)
	if s.m.EnergyWh <= 0 {
		smp.Volts, smp.Amps, smp.Watts = 0, 0, 0 // flat: the encoder is off
		return smp, nil
	}
	v, i := s.m.Terminal(s.watts)
	smp.Volts = v + s.rng.NormFloat64()*0.005*v
	smp.Amps = i
	smp.Watts = smp.Volts * i
	return smp, nil
}

func (s *Source) Close() error { return nil }
