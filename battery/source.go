package battery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/devices/v3/ina219"

	"fieldkit/drivers/ina226"
	"fieldkit/drivers/nut"
	"fieldkit/drivers/power"
	"fieldkit/internal/clock"
	"fieldkit/internal/secret"
)

// poller is a source read on a schedule. Poll may be called from the rig's
// loop and from the doctor check; implementations serialise themselves.
type poller interface {
	Poll(ctx context.Context) (power.Sample, error)
	Close() error
}

// inaSource reads an INA219 or INA226, opening it on first use so that a
// sensor plugged in late is picked up without a restart.
type inaSource struct {
	mu    sync.Mutex
	kind  string
	board Board
	rig   Rig
	clk   clock.Clock
	sense func() (v physic.ElectricPotential, i physic.ElectricCurrent, w physic.Power, err error)
	halt  func() error
}

func (s *inaSource) open() error {
	bus, err := s.board.I2C(s.rig.Bus)
	if err != nil {
		return err
	}
	shunt := physic.ElectricResistance(math.Round(s.rig.ShuntOhms * float64(physic.Ohm)))
	maxI := physic.ElectricCurrent(math.Round(s.rig.MaxCurrentA * float64(physic.Ampere)))
	addr := s.rig.Address
	if addr == 0 {
		addr = 0x40
	}
	return s.openOn(bus, addr, shunt, maxI)
}

func (s *inaSource) openOn(bus i2c.Bus, addr int, shunt physic.ElectricResistance, maxI physic.ElectricCurrent) error {
	switch s.kind {
	case KindINA226:
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

func (s *inaSource) Poll(ctx context.Context) (power.Sample, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sense == nil {
		if err := s.open(); err != nil {
			return power.Sample{}, fmt.Errorf("%s: %w", s.kind, err)
		}
	}
	v, i, w, err := s.sense()
	if err != nil {
		// Reopen next time: the sensor may have been unplugged and reset.
		s.sense = nil
		return power.Sample{}, fmt.Errorf("%s: %w", s.kind, err)
	}
	smp := power.NewSample(s.clk.Now())
	smp.Volts = float64(v) / float64(physic.Volt)
	smp.Amps = float64(i) / float64(physic.Ampere)
	// The power register is unsigned; give it the current's sign.
	smp.Watts = float64(w) / float64(physic.Watt)
	if smp.Amps < 0 {
		smp.Watts = -smp.Watts
	}
	return smp, nil
}

func (s *inaSource) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.halt == nil {
		return nil
	}
	err := s.halt()
	s.sense, s.halt = nil, nil
	return err
}

// nutSource polls a UPS through upsd.
type nutSource struct {
	mu   sync.Mutex
	rig  Rig
	clk  clock.Clock
	c    *nut.Client
	pass string
}

func (s *nutSource) addr() string {
	port := s.rig.Port
	if port == 0 {
		port = nut.DefaultPort
	}
	return fmt.Sprintf("%s:%d", s.rig.Host, port)
}

func (s *nutSource) Poll(ctx context.Context) (power.Sample, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.c == nil {
		if s.rig.PasswordFile != "" && s.pass == "" {
			p, err := secret.Read(s.rig.PasswordFile)
			if err != nil {
				return power.Sample{}, fmt.Errorf("nut: %w", err)
			}
			s.pass = p
		}
		c, err := nut.Dial(ctx, s.addr(), nut.Opts{Username: s.rig.Username, Password: s.pass})
		if err != nil {
			return power.Sample{}, err
		}
		s.c = c
	}
	vars, err := s.c.Vars(ctx, s.rig.UPS)
	if err != nil {
		var se *nut.ServerError
		if !errors.As(err, &se) {
			s.c.Close() // the connection is in an unknown state
			s.c = nil
		}
		return power.Sample{}, fmt.Errorf("nut %s@%s: %w", s.rig.UPS, s.addr(), err)
	}
	return nutSample(s.clk.Now(), vars)
}

// nutSample maps upsd variables onto a sample.
func nutSample(at time.Time, vars map[string]string) (power.Sample, error) {
	smp := power.NewSample(at)
	num := func(name string) (float64, bool, error) {
		v, ok := vars[name]
		if !ok {
			return 0, false, nil
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return 0, false, fmt.Errorf("nut: %s = %q is not a number", name, v)
		}
		return f, true, nil
	}
	charge, ok, err := num("battery.charge")
	if err != nil {
		return smp, err
	}
	if !ok {
		return smp, fmt.Errorf("nut: the UPS does not report battery.charge")
	}
	smp.Percent = charge
	if rt, ok, err := num("battery.runtime"); err != nil {
		return smp, err
	} else if ok && rt >= 0 {
		smp.Runtime = time.Duration(rt) * time.Second
	}
	if v, ok, _ := num("battery.voltage"); ok {
		smp.Volts = v
	}
	if w, ok, _ := num("ups.realpower"); ok {
		smp.Watts = w
	}
	smp.Status = vars["ups.status"]
	smp.OnMains, smp.Floor, _ = upsVerdict(smp.Status)
	return smp, nil
}

func (s *nutSource) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.c == nil {
		return nil
	}
	err := s.c.Close()
	s.c = nil
	return err
}

// simSource is a simulated pack discharging at a constant load on the
// injected clock, with a little measurement noise.
type simSource struct {
	mu    sync.Mutex
	clk   clock.Clock
	m     *power.Model
	watts float64
	last  time.Time
	rng   *rand.Rand
}

func newSim(r Rig, pk power.Pack, clk clock.Clock) *simSource {
	start := r.StartPercent
	if start == 0 {
		start = 60
	}
	return &simSource{clk: clk, m: power.NewModel(pk, start), watts: r.simWatts(pk), rng: rand.New(rand.NewPCG(uint64(len(r.Name)), 1))}
}

func (s *simSource) Poll(context.Context) (power.Sample, error) {
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

func (s *simSource) Close() error { return nil }

// ErrPayload is a telemetry message that does not hold the configured value.
var ErrPayload = errors.New("battery telemetry")

// parseTelemetry reads the configured values from one MQTT payload.
func parseTelemetry(at time.Time, payload []byte, vals []Value) (power.Sample, error) {
	smp := power.NewSample(at)
	var doc any
	needJSON := false
	for _, v := range vals {
		if v.Field != "" {
			needJSON = true
		}
	}
	if needJSON {
		dec := json.NewDecoder(strings.NewReader(string(payload)))
		dec.UseNumber()
		if err := dec.Decode(&doc); err != nil {
			return smp, fmt.Errorf("%w: payload is not JSON: %v", ErrPayload, err)
		}
	}
	for _, v := range vals {
		var f float64
		var err error
		if v.Field == "" {
			f, err = number(strings.TrimSpace(string(payload)))
		} else {
			f, err = extract(doc, v.Field)
		}
		if err != nil {
			return smp, fmt.Errorf("%w: %s: %v", ErrPayload, fieldName(v.Field), err)
		}
		switch v.Unit {
		case UnitPercent:
			if f < 0 || f > 100 {
				return smp, fmt.Errorf("%w: %s: %v is not a percentage", ErrPayload, fieldName(v.Field), f)
			}
			smp.Percent = f
		case UnitVolts:
			if f < 0 || f > 1000 {
				return smp, fmt.Errorf("%w: %s: %v V is not a battery voltage", ErrPayload, fieldName(v.Field), f)
			}
			smp.Volts = f
		case UnitWatts:
			if math.Abs(f) > 100000 {
				return smp, fmt.Errorf("%w: %s: %v W is not a plausible load", ErrPayload, fieldName(v.Field), f)
			}
			smp.Watts = f
		}
	}
	return smp, nil
}

func fieldName(f string) string {
	if f == "" {
		return "payload"
	}
	return "field " + f
}

// extract follows a dotted path through objects (and arrays, by index).
func extract(doc any, path string) (float64, error) {
	cur := doc
	for _, seg := range strings.Split(path, ".") {
		switch n := cur.(type) {
		case map[string]any:
			v, ok := n[seg]
			if !ok {
				return 0, fmt.Errorf("no key %q", seg)
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(n) {
				return 0, fmt.Errorf("%q is not an index of a %d-element list", seg, len(n))
			}
			cur = n[i]
		default:
			return 0, fmt.Errorf("%q: not an object", seg)
		}
	}
	switch v := cur.(type) {
	case json.Number:
		return number(v.String())
	case string:
		return number(strings.TrimSuffix(strings.TrimSpace(v), "%"))
	}
	return 0, fmt.Errorf("value is %T, not a number", cur)
}

func number(s string) (float64, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%q is not a number", truncate(s, 40))
	}
	return f, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
