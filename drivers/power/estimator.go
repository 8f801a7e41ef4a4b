package power

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Sample is one reading from a source. Quantities the source does not
// measure are NaN; NewSample starts with all of them unknown.
type Sample struct {
	At      time.Time
	Volts   float64 // at the terminals, under load
	Amps    float64 // positive while discharging
	Watts   float64
	Percent float64 // the device's own charge estimate
	// Runtime is the device's own time-to-empty (NUT battery.runtime);
	// negative when unknown.
	Runtime time.Duration
	// Status is the device's own status word (NUT ups.status), if any.
	Status string
	// OnMains is true when the device says it runs from external power
	// (a UPS on line): the pack is not draining, so there is no time to
	// empty to count down.
	OnMains bool
	// Floor is the least level the device's own flags call for (a UPS's
	// low-battery flag is at least Critical); Unknown when it says nothing.
	Floor Level
}

// NewSample returns a sample at t with every quantity unknown.
func NewSample(t time.Time) Sample {
	n := math.NaN()
	return Sample{At: t, Volts: n, Amps: n, Watts: n, Percent: n, Runtime: -1}
}

func known(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// Estimate is the estimator's view after a sample.
type Estimate struct {
	At      time.Time
	Percent float64 // NaN until known
	Volts   float64 // last terminal voltage, NaN when not measured
	// Watts is the EWMA of power, NaN when not known.
	Watts float64
	// CellVolts is the terminal voltage per cell under load.
	CellVolts float64
	// TTE is valid when TTEKnown.
	TTE      time.Duration
	TTEKnown bool
	// Calculating is true for the first samples of a pack (at start and
	// after a swap), while the estimate is still settling.
	Calculating bool
	// Swapped is true on the sample that revealed a new pack.
	Swapped bool
	Status  string
	// OnMains and Floor are the sample's.
	OnMains bool
	Floor   Level
}

// Options tune the estimator.
type Options struct {
	Pack Pack
	// Tau is the EWMA time constant of power and of voltage-only charge.
	Tau time.Duration
	// SettleSamples and SettleTime: the estimate is "calculating" until
	// both have passed since the start or a swap.
	SettleSamples int
	SettleTime    time.Duration
	// SwapJump is the rise in charge (percentage points) taken as a
	// fresh pack rather than noise.
	SwapJump float64
	// Correction is the time constant with which energy counting is pulled
	// towards the voltage curve, so that counting drift cannot grow.
	Correction time.Duration
	// SlopeWindow is how far back the fall of charge is fitted when power
	// is unknown; the TTE is "calculating" until half of it has passed.
	// Devices report whole percentages, so it must span several steps.
	SlopeWindow time.Duration
}

// DefaultOptions are used for zero fields.
var DefaultOptions = Options{
	Tau:           90 * time.Second,
	SettleSamples: 5,
	SettleTime:    30 * time.Second,
	SwapJump:      15,
	Correction:    20 * time.Minute,
	SlopeWindow:   10 * time.Minute,
}

// ErrOptions is returned for options that cannot work.
var ErrOptions = errors.New("power: bad estimator options")

// Estimator turns samples into estimates. It is not safe for concurrent
// use; one rig owns one estimator.
type Estimator struct {
	o Options

	started     bool
	last        time.Time
	packStart   time.Time
	n           int
	charge      float64 // percent, NaN when unknown
	energyWh    float64 // remaining, when counting
	counting    bool
	wEWMA       float64
	settleSum   float64
	settleCount int
	hist        []point // (t, charge) for the slope when power is unknown
}

type point struct {
	t time.Time
	p float64
}

// NewEstimator checks o and fills in defaults.
func NewEstimator(o Options) (*Estimator, error) {
	if o.Tau == 0 {
		o.Tau = DefaultOptions.Tau
	}
	if o.SettleSamples == 0 {
		o.SettleSamples = DefaultOptions.SettleSamples
	}
	if o.SettleTime == 0 {
		o.SettleTime = DefaultOptions.SettleTime
	}
	if o.SwapJump == 0 {
		o.SwapJump = DefaultOptions.SwapJump
	}
	if o.Correction == 0 {
		o.Correction = DefaultOptions.Correction
	}
	if o.SlopeWindow == 0 {
		o.SlopeWindow = DefaultOptions.SlopeWindow
	}
	if o.SlopeWindow < 0 || o.Tau < 0 || o.SettleSamples < 1 || o.SettleTime < 0 || o.SwapJump < 0 || o.Correction < 0 {
		return nil, fmt.Errorf("%w: %+v", ErrOptions, o)
	}
	if err := o.Pack.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrOptions, err)
	}
	return &Estimator{o: o, charge: math.NaN(), wEWMA: math.NaN()}, nil
}

// Update feeds one sample and returns the new estimate. Samples must come
// in time order; one older than the last is ignored except for status.
func (e *Estimator) Update(s Sample) Estimate {
	var dt time.Duration
	if e.started {
		dt = s.At.Sub(e.last)
		if dt < 0 {
			dt = 0
		}
	}
	pk := e.o.Pack
	cells := float64(pk.Cells)

	w := s.Watts
	amps := s.Amps
	if !known(w) && known(s.Volts) && known(amps) {
		w = s.Volts * amps
	}
	if !known(amps) && known(w) && known(s.Volts) && s.Volts > 0 {
		amps = w / s.Volts
	}

	// Charge straight from this sample.
	raw := math.NaN()
	fromVolts := false
	switch {
	case known(s.Percent):
		raw = math.Max(0, math.Min(100, s.Percent))
	case known(s.Volts) && s.Volts > 0:
		rest := s.Volts
		if known(amps) {
			rest += amps * pk.InternalOhms
		}
		raw = pk.Chemistry.Percent(rest / cells)
		fromVolts = true
	}

	est := Estimate{At: s.At, Volts: s.Volts, CellVolts: math.NaN(), Status: s.Status, OnMains: s.OnMains, Floor: s.Floor}
	if known(s.Volts) {
		est.CellVolts = s.Volts / cells
	}

	if !e.started {
		e.started = true
		e.packStart = s.At
	} else if known(raw) && known(e.charge) && raw-e.charge > e.o.SwapJump && !s.OnMains {
		// (On mains a rising charge is charging, however fast.)
		e.newPack(s.At)
		est.Swapped = true
	}
	e.last = s.At
	e.n++

	// Power EWMA survives a swap: the load did not change with the pack.
	if known(w) {
		if !known(e.wEWMA) {
			e.wEWMA = w
		} else {
			a := 1 - math.Exp(-dt.Seconds()/e.o.Tau.Seconds())
			e.wEWMA += a * (w - e.wEWMA)
		}
	}

	settling := e.n < e.o.SettleSamples || s.At.Sub(e.packStart) < e.o.SettleTime
	canCount := fromVolts && known(w) && pk.CapacityWh > 0
	switch {
	case !known(raw):
		// Nothing new about charge; energy counting can still go on.
		if e.counting && known(w) {
			e.drain(w, dt)
		}
	case canCount && e.counting:
		e.drain(w, dt)
		k := math.Min(1, dt.Seconds()/e.o.Correction.Seconds())
		e.energyWh += k * (raw/100*pk.CapacityWh - e.energyWh)
		e.charge = 100 * e.energyWh / pk.CapacityWh
	case canCount:
		// While settling, the charge is the mean of the voltage readings
		// (the first ones are the noisiest: a load that just started).
		e.settleSum += raw
		e.settleCount++
		e.charge = e.settleSum / float64(e.settleCount)
		if !settling {
			e.counting = true
			e.energyWh = e.charge / 100 * pk.CapacityWh
		}
	case fromVolts:
		if !known(e.charge) {
			e.charge = raw
		} else {
			a := 1 - math.Exp(-dt.Seconds()/e.o.Tau.Seconds())
			e.charge += a * (raw - e.charge)
		}
	default:
		e.charge = raw // the device's own estimate
	}
	est.Percent = e.charge
	est.Watts = e.wEWMA

	if known(e.charge) {
		e.hist = append(e.hist, point{s.At, e.charge})
		cut := s.At.Add(-e.o.SlopeWindow)
		i := 0
		for i < len(e.hist)-2 && e.hist[i].t.Before(cut) {
			i++
		}
		e.hist = e.hist[i:]
	}

	switch {
	case s.Runtime >= 0:
		est.TTE, est.TTEKnown = s.Runtime, true
	case known(e.wEWMA) && pk.CapacityWh > 0 && known(e.charge):
		if e.wEWMA > 0 {
			h := e.charge / 100 * pk.CapacityWh / e.wEWMA
			est.TTE, est.TTEKnown = time.Duration(h*float64(time.Hour)), true
		}
	case known(e.charge):
		// No power: extrapolate the fall of charge over the slope window,
		// once it spans half of it, so quantised percentages average out.
		if len(e.hist) >= 2 && e.hist[len(e.hist)-1].t.Sub(e.hist[0].t) >= e.o.SlopeWindow/2 {
			// The fitted charge, not the last reading: a whole-percent
			// reading is up to a point off, which is 10 % of the TTE at 10 %.
			if slope, now := e.fit(); slope < 0 && now > 0 {
				est.TTE, est.TTEKnown = time.Duration(now/-slope*float64(time.Second)), true
			}
		} else {
			settling = true
		}
	}
	if s.Runtime >= 0 && known(s.Percent) {
		// The device's own charge and runtime need no settling.
		settling = false
	}
	est.Calculating = settling || !known(e.charge)
	if est.Calculating && s.Runtime < 0 {
		est.TTEKnown = false
	}
	if s.OnMains {
		// Charging or full on mains: nothing is counting down. A UPS's
		// battery.runtime here is what it would last if mains failed.
		est.TTE, est.TTEKnown = 0, false
	}
	return est
}

func (e *Estimator) drain(w float64, dt time.Duration) {
	e.energyWh = math.Max(0, e.energyWh-w*dt.Hours())
}

func (e *Estimator) newPack(t time.Time) {
	e.packStart = t
	e.n = 0
	e.charge = math.NaN()
	e.counting = false
	e.settleSum, e.settleCount = 0, 0
	e.hist = e.hist[:0]
}

// fit is the least-squares line through the charge history: its slope in
// percent per second and its value at the last sample.
func (e *Estimator) fit() (slope, now float64) {
	t0 := e.hist[0].t
	var sx, sy, sxx, sxy float64
	n := float64(len(e.hist))
	for _, p := range e.hist {
		x := p.t.Sub(t0).Seconds()
		sx += x
		sy += p.p
		sxx += x * x
		sxy += x * p.p
	}
	den := n*sxx - sx*sx
	if den == 0 {
		return 0, sy / n
	}
	slope = (n*sxy - sx*sy) / den
	last := e.hist[len(e.hist)-1].t.Sub(t0).Seconds()
	return slope, (sy-slope*sx)/n + slope*last
}
