package power

import (
	"fmt"
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

// Alarm turns estimates into a level with hysteresis.
type Alarm struct {
	th      Thresholds
	level   Level
	pending Level
	count   int
}

// NewAlarm returns an alarm at Unknown.
func NewAlarm(th Thresholds) *Alarm {
	if th.Confirm < 1 {
		th.Confirm = 1
	}
	return &Alarm{th: th}
}

// Level is the current level.
func (a *Alarm) Level() Level { return a.level }

// Reset forgets the level, so that the next estimate sets it at once
// (used after a swap and when a source comes back from stale).
func (a *Alarm) Reset() { a.level, a.pending, a.count = Unknown, Unknown, 0 }

// Update feeds an estimate and returns the level and whether it changed.
func (a *Alarm) Update(e Estimate) (Level, bool) {
	if e.Swapped {
		a.Reset()
	}
	enter := max(a.eval(e, 0), e.Floor)
	// The device's own flag (a UPS's LB) is not noise: it raises the
	// level at once, without waiting for agreeing samples.
	raised := false
	if e.Floor > a.level && a.level != Unknown {
		a.level, a.count, raised = e.Floor, 0, true
	}
	var want Level
	switch {
	case enter == Unknown:
		want = a.level // nothing to judge by: keep what we had
	case a.level == Unknown:
		a.level, a.count = enter, 0
		return a.level, true
	case enter > a.level:
		want = enter
	default:
		// Stay in the current tier while the relaxed thresholds still
		// hold it there.
		want = max(enter, min(a.eval(e, 1), a.level))
	}
	if want == a.level {
		a.count = 0
		return a.level, raised
	}
	if a.count == 0 || (want > a.level) != (a.pending > a.level) {
		a.pending, a.count = want, 0
	}
	// While confirming, settle for the mildest level seen in the run.
	if want > a.level {
		a.pending = min(a.pending, want)
	} else {
		a.pending = max(a.pending, want)
	}
	a.count++
	if a.count < a.th.Confirm {
		return a.level, raised
	}
	a.level, a.count = a.pending, 0
	return a.level, true
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
