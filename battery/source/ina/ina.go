// Package ina is the battery sources ina219 and ina226: a shunt monitor
// on the board's I2C bus, read on a schedule.
package ina

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/devices/v3/ina219"

	"fieldkit/battery/source"
	"fieldkit/drivers/ina226"
	"fieldkit/drivers/power"
	"fieldkit/internal/clock"
	"fieldkit/internal/confutil"
)

// Config is an INA219 or INA226 rig.
type Config struct {
	Bus         string  `yaml:"bus"`     // board bus name, "" for the board's default
	Address     int     `yaml:"address"` // 0x40-0x4F
	ShuntOhms   float64 `yaml:"shunt_ohms"`
	MaxCurrentA float64 `yaml:"max_current_a"`
}

// New is a config to decode into.
func New() source.Config { return &Config{} }

func (c *Config) Validate(p *confutil.Problems) {
	if c.Address != 0 && (c.Address < 0x40 || c.Address > 0x4F) {
		p.Addf("address", "%#x is not an INA2xx address; expected 0x40-0x4F (64-79)", c.Address)
	}
	if c.ShuntOhms <= 0 || c.ShuntOhms > 10 {
		p.Addf("shunt_ohms", "%v: expected the shunt resistor in ohms, e.g. 0.1 (INA219 breakouts) or 0.002", c.ShuntOhms)
	}
	if c.MaxCurrentA <= 0 || c.MaxCurrentA > 200 {
		p.Addf("max_current_a", "%v: expected the largest current in amperes, e.g. 3.2 or 20", c.MaxCurrentA)
	}
}

func (c *Config) Pack(s source.PackSpec) (power.Pack, error) {
	return source.ResolvePack(s, source.PackDefaults{})
}

func (c *Config) Poll() time.Duration { return 2 * time.Second }

func (c *Config) Open(env source.Env) (any, error) {
	if env.Board == nil {
		return nil, errors.New("reads I2C but there is no board")
	}
	return &Source{Kind: env.Kind, Board: env.Board, Config: *c, Clock: env.Clock}, nil
}

// Source reads an INA219 or INA226, opening it on first use so that a
// sensor plugged in late is picked up without a restart.
type Source struct {
	Kind   string // ina219 or ina226
	Board  source.Board
	Config Config
	Clock  clock.Clock

	mu    sync.Mutex
	sense func() (v physic.ElectricPotential, i physic.ElectricCurrent, w physic.Power, err error)
	halt  func() error
}

func (s *Source) open() error {
	bus, err := s.Board.I2C(s.Config.Bus)
	if err != nil {
		return err
	}
	shunt := physic.ElectricResistance(math.Round(s.Config.ShuntOhms * float64(physic.Ohm)))
	maxI := physic.ElectricCurrent(math.Round(s.Config.MaxCurrentA * float64(physic.Ampere)))
	addr := s.Config.Address
	if addr == 0 {
		addr = 0x40
	}
	return s.openOn(bus, addr, shunt, maxI)
}

func (s *Source) openOn(bus i2c.Bus, addr int, shunt physic.ElectricResistance, maxI physic.ElectricCurrent) error {
	switch s.Kind {
	case "ina226":
		o := ina226.DefaultOpts
		o.Address, o.ShuntResistor, o.MaxCurrent = addr, shunt, maxI
		d, err := ina226.New(bus, &o)
		if err != nil {
			return err
		}
		s.sense = func() (physic.ElectricPotential, physic.ElectricCurrent, physic.Power, error) {
			pm, err := d.Sense()
			return pm.Voltage, pm.Current, pm.Power, err
		}
		s.halt = d.Halt
	default:
		d, err := ina219.New(bus, &ina219.Opts{Address: addr, SenseResistor: shunt, MaxCurrent: maxI})
		if err != nil {
			return fmt.Errorf("ina219 at %#x: %w", addr, err)
		}
		s.sense = func() (physic.ElectricPotential, physic.ElectricCurrent, physic.Power, error) {
			pm, err := d.Sense()
			return pm.Voltage, pm.Current, pm.Power, err
		}
		s.halt = func() error { return nil } // the periph driver has no power-down
	}
	return nil
}

// Poll reads the monitor.
func (s *Source) Poll(ctx context.Context) (power.Sample, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sense == nil {
		if err := s.open(); err != nil {
			return power.Sample{}, fmt.Errorf("%s: %w", s.Kind, err)
		}
	}
	v, i, w, err := s.sense()
	if err != nil {
		// Reopen next time: the sensor may have been unplugged and reset.
		s.sense = nil
		return power.Sample{}, fmt.Errorf("%s: %w", s.Kind, err)
	}
	smp := power.NewSample(s.Clock.Now())
	smp.Volts = float64(v) / float64(physic.Volt)
	smp.Amps = float64(i) / float64(physic.Ampere)
	// The power register is unsigned; give it the current's sign.
	smp.Watts = float64(w) / float64(physic.Watt)
	if smp.Amps < 0 {
		smp.Watts = -smp.Watts
	}
	return smp, nil
}

// Close powers the monitor down.
func (s *Source) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.halt == nil {
		return nil
	}
	err := s.halt()
	s.sense, s.halt = nil, nil
	return err
}
