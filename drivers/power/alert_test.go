package power

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

func est(pct float64, tte time.Duration, cell float64) Estimate {
	e := Estimate{Percent: pct, CellVolts: cell, TTE: tte, TTEKnown: tte > 0}
	if cell == 0 {
		e.CellVolts = math.NaN()
	}
	return e
}

func TestLevels(t *testing.T) {
	cases := []struct {
		name string
		e    Estimate
		want Level
	}{
		{"full", est(90, 3*time.Hour, 3.9), OK},
		{"low charge", est(24, time.Hour, 3.6), Warn},
		{"short runtime", est(60, 19*time.Minute, 3.6), Warn},
		{"critical charge", est(9, time.Hour, 3.6), Critical},
		{"critical runtime", est(50, 9*time.Minute, 3.6), Critical},
		{"swap runtime", est(50, 4*time.Minute, 3.6), SwapNow},
		{"swap cell voltage", est(50, time.Hour, 3.25), SwapNow},
		{"calculating ignores TTE", Estimate{Percent: 60, TTE: time.Minute, TTEKnown: true, Calculating: true, CellVolts: math.NaN()}, OK},
		{"nothing known", Estimate{Percent: math.NaN(), CellVolts: math.NaN()}, Unknown},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := NewAlarm(DefaultThresholds)
			if l, ch := a.Update(c.e); l != c.want || ch != (c.want != Unknown) {
				t.Fatalf("level %v changed=%v, want %v", l, ch, c.want)
			}
		})
	}
}

func TestThresholdOff(t *testing.T) {
	th := DefaultThresholds
	th.WarnTTE, th.CriticalTTE, th.SwapTTE = 0, 0, 0
	a := NewAlarm(th)
	if l, _ := a.Update(est(60, time.Minute, 3.7)); l != OK {
		t.Fatalf("TTE thresholds off, level %v", l)
	}
}

func TestHysteresis(t *testing.T) {
	a := NewAlarm(DefaultThresholds)
	seq := []struct {
		pct  float64
		want Level
	}{
		{30, OK},
		{24, OK}, {24, OK}, {24, Warn}, // confirmed on the third sample
		{26, Warn}, {27.9, Warn}, {26, Warn}, // back above 25 but not above 28
		{29, Warn}, {24, Warn}, {29, Warn}, // an interrupted run does not count
		{29, Warn}, {29, OK},
		{8, OK}, {8, OK}, {8, Critical}, // straight to critical
		{11, Critical}, {12.5, Critical}, {14, Critical}, {14, Critical}, {14, Warn},
	}
	for i, s := range seq {
		l, _ := a.Update(est(s.pct, 0, 0))
		if l != s.want {
			t.Fatalf("step %d (%v %%): level %v, want %v", i, s.pct, l, s.want)
		}
	}
}

func TestNoFlappingOnNoise(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	a := NewAlarm(DefaultThresholds)
	changes := 0
	// Charge hovering at the warn line with ±1.5 % noise for an hour.
	for i := 0; i < 1800; i++ {
		p := 25 + rng.NormFloat64()*0.75
		if _, ch := a.Update(est(p, 0, 0)); ch {
			changes++
		}
	}
	if changes > 2 { // the first verdict, then at most one move into warn
		t.Fatalf("%d level changes on noise", changes)
	}
}

// A device's own flag raises the level at once; when it goes, the level
// falls back through the usual confirmation and hysteresis.
func TestFloor(t *testing.T) {
	a := NewAlarm(DefaultThresholds)
	e := est(60, time.Hour, 0)
	if l, ch := a.Update(e); l != OK || !ch {
		t.Fatalf("first verdict %v changed=%v", l, ch)
	}
	e.Floor = Critical
	if l, ch := a.Update(e); l != Critical || !ch {
		t.Fatalf("floor critical at 60 %%: %v changed=%v, want critical at once", l, ch)
	}
	e.Floor = Unknown
	for i := 0; i < DefaultThresholds.Confirm-1; i++ {
		if l, _ := a.Update(e); l != Critical {
			t.Fatalf("sample %d after the flag cleared: %v, want critical until confirmed", i, l)
		}
	}
	if l, ch := a.Update(e); l != OK || !ch {
		t.Fatalf("after %d clean samples: %v changed=%v, want ok", DefaultThresholds.Confirm, l, ch)
	}
	// A first reading with a floor is taken as it is.
	b := NewAlarm(DefaultThresholds)
	if l, _ := b.Update(Estimate{Percent: math.NaN(), CellVolts: math.NaN(), Floor: Warn}); l != Warn {
		t.Fatalf("floor only: %v", l)
	}
}

// On mains a short runtime or a low cell voltage is no reason to swap:
// only the charge counts, and it clears the level as it rises.
func TestOnMainsClearsAsChargeRises(t *testing.T) {
	a := NewAlarm(DefaultThresholds)
	if l, _ := a.Update(est(8, 3*time.Minute, 3.2)); l != SwapNow {
		t.Fatalf("on battery, 3 min left: %v", l)
	}
	seq := []struct {
		pct  float64
		want Level
	}{
		{8, SwapNow}, {8, SwapNow}, {8, Critical}, // mains back: confirmed down to what the charge says
		{11, Critical}, {12.9, Critical}, {12.9, Critical}, {12.9, Critical}, // within the hysteresis
		{14, Critical}, {14, Critical}, {14, Warn},
		{27, Warn}, {27, Warn}, {27, Warn},
		{29, Warn}, {29, Warn}, {29, OK},
	}
	for i, s := range seq {
		e := est(s.pct, 3*time.Minute, 3.2)
		e.OnMains = true
		if l, _ := a.Update(e); l != s.want {
			t.Fatalf("step %d (%v %% on mains): %v, want %v", i, s.pct, l, s.want)
		}
	}
}

// A level does not relax while the charge falls, even when a reading
// that held it (a low cell voltage, a short runtime) goes away; once the
// charge rises again (a charger, a fresh pack) it does.
func TestNoRelaxWhileDischarging(t *testing.T) {
	a := NewAlarm(DefaultThresholds)
	feed := func(e Estimate, n int) Level {
		var l Level
		for range n {
			l, _ = a.Update(e)
		}
		return l
	}
	if l := feed(est(1.5, 0, 3.1), 3); l != SwapNow {
		t.Fatalf("1.5 %% at 3.1 V per cell: %v", l)
	}
	// The sim's flat pack reads 0 V: no cell voltage, the same charge.
	if l := feed(est(1.5, 0, 0), 10); l != SwapNow {
		t.Fatalf("flat pack with no voltage reading went to %v", l)
	}
	// The load drops: a long runtime, still a falling charge.
	if l := feed(est(1.4, 3*time.Hour, 3.4), 10); l != SwapNow {
		t.Fatalf("a lighter load cleared swap: %v", l)
	}
	// On a charger: the charge rises past the margin, the level follows.
	if l := feed(est(40, 2*time.Hour, 3.7), 3); l != OK {
		t.Fatalf("a charged pack stays at %v", l)
	}
}
