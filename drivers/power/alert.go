package power

import (
	"fmt"
	"math"
	"time"
)

// Level is an alert tier; higher is worse.
type Level int

const (
	Unknown Level = iota
	OK
	Warn
	Critical
	SwapNow
)

var levelNames = [...]string{"unknown", "ok", "warn", "critical", "swap"}

func (l Level) String() string {
	if l < 0 || int(l) >= len(levelNames) {
		return fmt.Sprintf("level(%d)", int(l))
	}
	return levelNames[l]
}

// MarshalText writes the level's name.
func (l Level) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// Thresholds decide the alert tiers. A zero threshold is off.
type Thresholds struct {
	WarnPercent     float64
	WarnTTE         time.Duration
	CriticalPercent float64
	CriticalTTE     time.Duration
	SwapTTE         time.Duration
	// SwapCellVolts is the cell voltage under load below which the pack
	// must be swapped now, whatever the charge estimate says.
	SwapCellVolts float64

	// Leaving a tier needs the reading back past the threshold by this
	// much: percentage points, a fraction of the TTE threshold, volts.
	HystPercent float64
	HystTTE     float64
	HystVolts   float64
	// Confirm is how many consecutive samples must agree before the level
	// changes, so that one noisy reading never raises or clears an alert.
	Confirm int
}

// DefaultThresholds: warn at 25 % or 20 min, critical at 10 % or 10 min,
// swap now at 5 min or 3.3 V per cell under load (Li-ion and LiPo).
var DefaultThresholds = Thresholds{
	WarnPercent: 25, WarnTTE: 20 * time.Minute,
	CriticalPercent: 10, CriticalTTE: 10 * time.Minute,
	SwapTTE: 5 * time.Minute, SwapCellVolts: 3.3,
	HystPercent: 3, HystTTE: 0.1, HystVolts: 0.1,
	Confirm: 3,
}

// Alarm turns estimates into a level with hysteresis. A level never
// relaxes while the pack discharges: only a charge that rose again (a
// swap, a charger) clears it, so a flat pack whose voltage reading drops
// out does not go from swap back to critical. On mains (a UPS on line)
// the pack is not discharging, so its charge alone decides.
//
// On top of the level the readings call for, a device's own flag (a
// UPS's LB, RB, OVER: Estimate.Floor) holds a least level: raised at
// once, and released after Confirm samples without it.
type Alarm struct {
	th      Thresholds
	core    Level // from the readings
	pending Level
	count   int
	low     float64 // lowest charge seen at this level; NaN: none known

	floor      Level // the device's flag, while it holds
	floorCount int   // samples since the flag last called for floor
	level      Level // max(core, floor): what is reported
}

// NewAlarm returns an alarm at Unknown.
func NewAlarm(th Thresholds) *Alarm {
	if th.Confirm < 1 {
		th.Confirm = 1
	}
	return &Alarm{th: th, low: math.NaN()}
}

// Level is the current level.
func (a *Alarm) Level() Level { return a.level }

// Reset forgets the level, so that the next estimate sets it at once
// (used after a swap and when a source comes back from stale).
func (a *Alarm) Reset() {
	a.core, a.pending, a.count, a.low = Unknown, Unknown, 0, math.NaN()
	a.floor, a.floorCount, a.level = Unknown, 0, Unknown
}

// discharging reports whether the charge has not risen since the level
// was set: by at least the hysteresis margin (1 point when none is set).
func (a *Alarm) discharging(e Estimate) bool {
	if e.OnMains || !known(e.Percent) || !known(a.low) {
		return false // charging, or no charge to judge by: the thresholds decide
	}
	return e.Percent < a.low+math.Max(a.th.HystPercent, 1)
}

// Update feeds an estimate and returns the level and whether it changed.
func (a *Alarm) Update(e Estimate) (Level, bool) {
	if e.Swapped {
		a.Reset()
	}
	prev := a.level
	a.updateCore(e)
	switch {
	case e.Floor >= a.floor && e.Floor > Unknown:
		a.floor, a.floorCount = e.Floor, 0
	case a.floor > Unknown:
		// The flag went (or eased): release it once samples agree.
		if a.floorCount++; a.floorCount >= a.th.Confirm {
			a.floor, a.floorCount = e.Floor, 0
		}
	}
	a.level = max(a.core, a.floor)
	return a.level, a.level != prev
}

// updateCore moves the readings' level, with confirmation and hysteresis.
func (a *Alarm) updateCore(e Estimate) {
	enter := a.eval(e, 0)
	var want Level
	switch {
	case enter == Unknown:
		want = a.core // nothing to judge by: keep what we had
	case a.core == Unknown:
		a.core, a.count, a.low = enter, 0, e.Percent
		return
	case enter > a.core:
		want = enter
	case a.discharging(e):
		want = a.core // a falling charge never clears an alert
	default:
		// Stay in the current tier while the relaxed thresholds still
		// hold it there.
		want = max(enter, min(a.eval(e, 1), a.core))
	}
	if known(e.Percent) && (!known(a.low) || e.Percent < a.low) {
		a.low = e.Percent
	}
	if want == a.core {
		a.count = 0
		return
	}
	if a.count == 0 || (want > a.core) != (a.pending > a.core) {
		a.pending, a.count = want, 0
	}
	// While confirming, settle for the mildest level seen in the run.
	if want > a.core {
		a.pending = min(a.pending, want)
	} else {
		a.pending = max(a.pending, want)
	}
	a.count++
	if a.count < a.th.Confirm {
		return
	}
	if a.pending < a.core {
		a.low = e.Percent // a new, milder level starts from here
	}
	a.core, a.count = a.pending, 0
}

// eval is the tier the estimate is in; relax 1 applies the hysteresis
// margins (the thresholds for leaving a tier).
func (a *Alarm) eval(e Estimate, relax float64) Level {
	th := a.th
	pct := known(e.Percent)
	// On mains the pack is charging: neither a runtime nor a charging
	// voltage says it is about to die.
	tte := e.TTEKnown && !e.Calculating && !e.OnMains
	cell := known(e.CellVolts) && e.CellVolts > 0 && !e.OnMains
	if !pct && !tte && !cell {
		return Unknown
	}
	below := func(p float64, limit float64) bool { return pct && limit > 0 && p < limit+relax*th.HystPercent }
	short := func(limit time.Duration) bool {
		return tte && limit > 0 && float64(e.TTE) < float64(limit)*(1+relax*th.HystTTE)
	}
	low := func(limit float64) bool { return cell && limit > 0 && e.CellVolts < limit+relax*th.HystVolts }
	switch {
	case short(th.SwapTTE) || low(th.SwapCellVolts):
		return SwapNow
	case below(e.Percent, th.CriticalPercent) || short(th.CriticalTTE):
		return Critical
	case below(e.Percent, th.WarnPercent) || short(th.WarnTTE):
		return Warn
	case !pct && !tte:
		return Unknown // only a cell voltage, and it is fine: no verdict
	}
	return OK
}
