package power

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

var t0 = time.Date(2025, 6, 1, 18, 0, 0, 0, time.UTC)

// rig drives a model pack through a load profile and feeds what an INA
// sensor would read into an estimator.
type rig struct {
	t       *testing.T
	m       *Model
	e       *Estimator
	now     time.Time
	every   time.Duration
	rng     *rand.Rand
	vNoise  float64 // σ of the voltage reading, volts
	iNoise  float64 // σ of the current reading, fraction
	current bool    // the sensor measures current
}

func newRig(t *testing.T, pack Pack, percent float64) *rig {
	e, err := NewEstimator(Options{Pack: pack})
	if err != nil {
		t.Fatal(err)
	}
	return &rig{t: t, m: NewModel(pack, percent), e: e, now: t0, every: 2 * time.Second, current: true,
		rng: rand.New(rand.NewPCG(1, 2))}
}

func (r *rig) step(watts float64) Estimate {
	r.m.Draw(watts, r.every)
	r.now = r.now.Add(r.every)
	v, i := r.m.Terminal(watts)
	s := NewSample(r.now)
	s.Volts = v + r.rng.NormFloat64()*r.vNoise
	if r.current {
		s.Amps = i * (1 + r.rng.NormFloat64()*r.iNoise)
	}
	return r.e.Update(s)
}

// within checks the TTE is within 10 % of the truth.
func (r *rig) within(e Estimate, watts float64, what string) {
	r.t.Helper()
	truth := r.m.TTE(watts)
	if e.Calculating || !e.TTEKnown {
		r.t.Fatalf("%s at %v: still calculating (%+v)", what, r.now.Sub(t0), e)
	}
	if d := math.Abs(float64(e.TTE-truth)) / float64(truth); d > 0.10 {
		r.t.Fatalf("%s at %v: TTE %v, truth %v (%.1f %% off)", what, r.now.Sub(t0), e.TTE.Round(time.Second), truth.Round(time.Second), 100*d)
	}
}

func TestConstantLoad(t *testing.T) {
	for name, pack := range Presets {
		t.Run(name, func(t *testing.T) {
			r := newRig(t, pack, 80)
			watts := pack.CapacityWh / 3 // three hours from full
			var checked int
			for r.m.TTE(watts) > 5*time.Minute {
				e := r.step(watts)
				elapsed := r.now.Sub(t0)
				// The first sample comes one interval after t0.
				if elapsed < DefaultOptions.SettleTime+r.every && !e.Calculating {
					t.Fatalf("not calculating at %v", elapsed)
				}
				if elapsed >= DefaultOptions.SettleTime+r.every {
					r.within(e, watts, "constant load")
					checked++
				}
			}
			if checked < 1000 {
				t.Fatalf("only %d samples checked", checked)
			}
		})
	}
}

func TestSteppedLoad(t *testing.T) {
	r := newRig(t, Presets["vmount-14v"], 95)
	settle := 4 * DefaultOptions.Tau // the EWMA is within 2 % of a step after 4τ
	steps := []struct {
		watts float64
		for_  time.Duration
	}{{20, 20 * time.Minute}, {60, 20 * time.Minute}, {30, 20 * time.Minute}, {90, 10 * time.Minute}}
	for _, st := range steps {
		start := r.now
		for r.now.Sub(start) < st.for_ {
			e := r.step(st.watts)
			if r.now.Sub(start) >= settle {
				r.within(e, st.watts, "stepped load")
			}
		}
	}
}

func TestNoisyReadings(t *testing.T) {
	r := newRig(t, Presets["vmount-26v"], 90)
	r.vNoise, r.iNoise = 0.08, 0.05
	watts := 45.0
	a := NewAlarm(DefaultThresholds)
	var changes []Level
	for r.m.TTE(watts) > 2*time.Minute {
		e := r.step(watts)
		if r.now.Sub(t0) >= time.Minute && r.m.TTE(watts) > 5*time.Minute {
			r.within(e, watts, "noisy")
		}
		if l, ch := a.Update(e); ch {
			changes = append(changes, l)
		}
	}
	// Falling once through each tier, never back: no flapping.
	want := []Level{OK, Warn, Critical, SwapNow}
	if len(changes) != len(want) {
		t.Fatalf("level changes %v, want %v", changes, want)
	}
	for i := range want {
		if changes[i] != want[i] {
			t.Fatalf("level changes %v, want %v", changes, want)
		}
	}
}

func TestSwap(t *testing.T) {
	pack := Presets["np-f-2s"]
	r := newRig(t, pack, 30)
	watts := 15.0
	a := NewAlarm(DefaultThresholds)
	for r.m.Percent() > 12 {
		a.Update(r.step(watts))
	}
	if a.Level() < Warn {
		t.Fatalf("level %v before the swap, want warn or worse", a.Level())
	}
	r.m = NewModel(pack, 100) // a fresh pack goes in
	e := r.step(watts)
	if !e.Swapped || !e.Calculating || e.TTEKnown {
		t.Fatalf("swap not seen: %+v", e)
	}
	if l, ch := a.Update(e); !ch || l != OK {
		t.Fatalf("after swap level %v changed=%v, want ok at once", l, ch)
	}
	swapAt := r.now
	for r.now.Sub(swapAt) < time.Hour {
		e := r.step(watts)
		if e.Swapped {
			t.Fatal("a second swap reported")
		}
		if r.now.Sub(swapAt) >= DefaultOptions.SettleTime {
			r.within(e, watts, "after swap")
		} else if !e.Calculating {
			t.Fatalf("not calculating %v after the swap", r.now.Sub(swapAt))
		}
	}
}

// An encoder that reports whole percentages and no power: the TTE comes
// from the slope of the charge.
func TestPercentOnly(t *testing.T) {
	e, err := NewEstimator(Options{Pack: Presets["vmount-14v"]})
	if err != nil {
		t.Fatal(err)
	}
	rate := 100.0 / 3 / 3600 // percent per second: three hours from full
	now := t0
	for p := 70.0; p > 5; p -= rate * 5 {
		now = now.Add(5 * time.Second)
		s := NewSample(now)
		s.Percent = math.Floor(p)
		est := e.Update(s)
		elapsed := now.Sub(t0)
		if elapsed < DefaultOptions.SlopeWindow/2 {
			if !est.Calculating {
				t.Fatalf("not calculating at %v", elapsed)
			}
			continue
		}
		if elapsed < DefaultOptions.SlopeWindow {
			continue // the window is still filling
		}
		truth := time.Duration(p / rate * float64(time.Second))
		if d := math.Abs(float64(est.TTE-truth)) / float64(truth); !est.TTEKnown || d > 0.10 {
			t.Fatalf("at %v (%.1f %%): TTE %v known=%v, truth %v", elapsed, p, est.TTE, est.TTEKnown, truth)
		}
	}
}

// A UPS over NUT reports its own runtime, which is passed through.
func TestRuntimeFromDevice(t *testing.T) {
	e, _ := NewEstimator(Options{Pack: Presets["vmount-14v"]})
	s := NewSample(t0)
	s.Percent, s.Runtime, s.Status = 64, 42*time.Minute, "OB DISCHRG"
	est := e.Update(s)
	if !est.TTEKnown || est.TTE != 42*time.Minute || est.Percent != 64 || est.Status != "OB DISCHRG" {
		t.Fatalf("%+v", est)
	}
}

func TestVoltageOnlyTracksCharge(t *testing.T) {
	r := newRig(t, Presets["vmount-14v"], 90)
	r.current = false
	watts := 5.0 // light load: the missing load correction costs little
	for r.m.Percent() > 10 {
		e := r.step(watts)
		if e.Watts == e.Watts {
			t.Fatalf("power %v reported without a current reading", e.Watts)
		}
		if r.now.Sub(t0) > 5*DefaultOptions.Tau && math.Abs(e.Percent-r.m.Percent()) > 3 {
			t.Fatalf("at %v: charge %.1f, truth %.1f", r.now.Sub(t0), e.Percent, r.m.Percent())
		}
	}
}

func TestCurveRoundTrip(t *testing.T) {
	for _, c := range Chemistries {
		for p := 0.0; p <= 100; p += 2.5 {
			if got := c.Percent(c.Volts(p)); math.Abs(got-p) > 1e-9 {
				t.Errorf("%s: %v %% → %.3f V → %v %%", c.Name, p, c.Volts(p), got)
			}
		}
		if c.Percent(0) != 0 || c.Percent(9) != 100 {
			t.Errorf("%s: not clamped", c.Name)
		}
		for i := 1; i < len(c.Curve); i++ {
			if c.Curve[i].Volts <= c.Curve[i-1].Volts || c.Curve[i].Percent <= c.Curve[i-1].Percent {
				t.Errorf("%s: curve not strictly ascending at %d", c.Name, i)
			}
		}
	}
}

func TestModelTerminal(t *testing.T) {
	m := NewModel(Presets["vmount-26v"], 100)
	v, i := m.Terminal(0)
	if math.Abs(v-29.4) > 1e-9 || i != 0 {
		t.Fatalf("open circuit %v V %v A, want 29.4 V 0 A", v, i)
	}
	v, i = m.Terminal(100)
	if math.Abs(v*i-100) > 1e-9 || math.Abs(29.4-i*0.15-v) > 1e-9 {
		t.Fatalf("100 W: %v V × %v A", v, i)
	}
}

func TestOptionsRefused(t *testing.T) {
	for _, o := range []Options{
		{},
		{Pack: Pack{Chemistry: LiIon, Cells: 0}},
		{Pack: Presets["np-f-2s"], Tau: -time.Second},
		{Pack: Pack{Chemistry: LiIon, Cells: 4, CapacityWh: -1}},
	} {
		if _, err := NewEstimator(o); err == nil {
			t.Errorf("accepted %+v", o)
		}
	}
}

// On mains a UPS's runtime is not a countdown, and a device's own charge
// and runtime need no settling time.
func TestOnMainsHasNoTTE(t *testing.T) {
	e, _ := NewEstimator(Options{Pack: Presets["vmount-14v"]})
	s := NewSample(t0)
	s.Percent, s.Runtime, s.Status = 20, 4*time.Minute, "OB DISCHRG"
	if est := e.Update(s); !est.TTEKnown || est.Calculating {
		t.Fatalf("first UPS reading on battery: %+v, want a known TTE at once", est)
	}
	s.At, s.Status, s.OnMains, s.Floor = t0.Add(10*time.Second), "OL CHRG", true, Warn
	est := e.Update(s)
	if est.TTEKnown || !est.OnMains || est.Floor != Warn || est.Percent != 20 {
		t.Fatalf("on mains: %+v", est)
	}
}
