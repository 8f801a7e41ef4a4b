// Package cue is the vocabulary shared by the cue outputs (GPIO, LED
// strips, haptics, MQTT devices) and the scene engine: an Action a step
// asks for, the Target interface every output implements, and the named
// haptic patterns, defined once for every haptic output kind.
package cue

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Verb is what an action does.
type Verb string

const (
	On     Verb = "on"
	Off    Verb = "off"
	Pulse  Verb = "pulse"  // on for For, then off
	Blink  Verb = "blink"  // Count times, one on/off cycle per Period
	Level  Verb = "level"  // Level percent: PWM duty, brightness, dimmer
	Color  Verb = "color"  // Color, at Level brightness when given
	Effect Verb = "effect" // Effect (LED strips, WLED)
	Haptic Verb = "haptic" // Pattern on a haptic output
)

// Verbs lists every verb, for error messages.
var Verbs = []Verb{On, Off, Pulse, Blink, Level, Color, Effect, Haptic}

// Action is what one scene step asks of one target.
type Action struct {
	Do      Verb          `yaml:"do" json:"do"`
	For     time.Duration `yaml:"for,omitempty" json:"for,omitempty"`
	Period  time.Duration `yaml:"period,omitempty" json:"period,omitempty"`
	Count   int           `yaml:"count,omitempty" json:"count,omitempty"`
	Level   *int          `yaml:"level,omitempty" json:"level,omitempty"`
	Color   string        `yaml:"color,omitempty" json:"color,omitempty"`     // "#rrggbb"
	Effect  string        `yaml:"effect,omitempty" json:"effect,omitempty"`   // solid, chase, flash, countdown
	Pattern string        `yaml:"pattern,omitempty" json:"pattern,omitempty"` // a name in Patterns
	Reverse bool          `yaml:"reverse,omitempty" json:"reverse,omitempty"` // countdown empties instead of fills
}

// Target is one configured output. Apply must return quickly: anything
// that lasts (a blink, an effect, waiting for a wearable's ack) runs on a
// goroutine the target owns, replaced by the next Apply and stopped by
// Close, so that all targets of one scene step start together.
type Target interface {
	Name() string
	Kind() string
	// Check validates a for this target without acting (scene loading).
	// Its errors, like Apply's, say what is wrong, not which output: the
	// caller names the output.
	Check(a Action) error
	Apply(ctx context.Context, a Action) error
	// State is the desired state, for the status API.
	State() any
	Close() error
}

// Safer is an output with a safe state: where the agent puts it on start,
// before any scene runs, so that nothing a crashed or killed agent left on
// stays on. The safe state is off. An output on the network keeps the safe
// state as its desired state, so it is sent again after a reconnect if
// the device could not be reached at once. Outputs with no lasting state
// (a wearable's one-shot buzz) need not implement it.
type Safer interface {
	// Safe stops whatever the output plays and puts it in its safe
	// state. Like Apply it returns quickly.
	Safe(ctx context.Context) error
}

// PulseStep is one on/off beat of a haptic pattern.
type PulseStep struct {
	On       time.Duration `json:"on"`
	Off      time.Duration `json:"off"`
	Strength int           `json:"strength"` // percent
}

// Pattern is a named haptic pattern. Pulses drive a plain vibration motor
// or a wearable; Effects are the DRV2605L ROM library effect ids (library
// 1, ERM) that feel the same, at most 8.
type Pattern struct {
	Name    string      `json:"name"`
	Pulses  []PulseStep `json:"pulses"`
	Effects []uint8     `json:"effects"`
}

// Length is how long the pattern runs on a plain motor.
func (p Pattern) Length() time.Duration {
	var d time.Duration
	for _, s := range p.Pulses {
		d += s.On + s.Off
	}
	return d
}

const ms = time.Millisecond

// Patterns are the haptic cues presenters learn once: the same name feels
// the same on a GPIO motor, a DRV2605L and a wearable.
var Patterns = map[string]Pattern{
	"short": {Name: "short", Pulses: []PulseStep{{150 * ms, 0, 100}}, Effects: []uint8{1}},
	"double": {Name: "double", Pulses: []PulseStep{{120 * ms, 120 * ms, 100}, {120 * ms, 0, 100}},
		Effects: []uint8{10}},
	"long": {Name: "long", Pulses: []PulseStep{{600 * ms, 0, 100}}, Effects: []uint8{47}},
	"go-live": {Name: "go-live", Pulses: []PulseStep{{500 * ms, 250 * ms, 100}, {500 * ms, 250 * ms, 100}, {500 * ms, 0, 100}},
		Effects: []uint8{47, 0x80 | 25, 47, 0x80 | 25, 47}},
	"wrap-up": {Name: "wrap-up", Pulses: []PulseStep{{200 * ms, 200 * ms, 60}, {200 * ms, 200 * ms, 80}, {200 * ms, 200 * ms, 100}, {200 * ms, 0, 100}},
		Effects: []uint8{52, 52}},
	"swap-battery": {Name: "swap-battery", Pulses: []PulseStep{{100 * ms, 100 * ms, 100}, {100 * ms, 100 * ms, 100}, {100 * ms, 400 * ms, 100}, {600 * ms, 0, 100}},
		Effects: []uint8{12, 0x80 | 40, 47}},
}

// LookupPattern returns the named pattern or an error listing the names.
func LookupPattern(name string) (Pattern, error) {
	p, ok := Patterns[name]
	if !ok {
		return Pattern{}, fmt.Errorf("unknown haptic pattern %q; expected one of: %s", name, patternNames())
	}
	return p, nil
}

func patternNames() string {
	names := make([]string, 0, len(Patterns))
	for n := range Patterns {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// Percent returns a's Level, or def when the action has none.
func (a Action) Percent(def int) int {
	if a.Level == nil {
		return def
	}
	return *a.Level
}

// Validate checks the fields that do not depend on the target kind.
func (a Action) Validate() error {
	switch a.Do {
	case On, Off:
	case Pulse:
		if a.For <= 0 {
			return fmt.Errorf("pulse needs a positive 'for' (e.g. for: 200ms)")
		}
	case Blink:
		if a.Period <= 0 || a.Count <= 0 {
			return fmt.Errorf("blink needs a positive 'period' and 'count' (e.g. period: 500ms, count: 3)")
		}
	case Level:
		if a.Level == nil {
			return fmt.Errorf("level needs 'level' (0-100)")
		}
	case Color:
		if _, _, _, err := ParseColor(a.Color); err != nil {
			return err
		}
	case Effect:
		switch a.Effect {
		case "solid", "chase", "flash", "countdown":
		default:
			return fmt.Errorf("unknown effect %q; expected solid, chase, flash or countdown", a.Effect)
		}
		if a.Effect == "countdown" && a.For <= 0 {
			return fmt.Errorf("countdown needs a positive 'for' (how long the bar runs)")
		}
	case Haptic:
		if _, err := LookupPattern(a.Pattern); err != nil {
			return err
		}
	case "":
		return fmt.Errorf("missing 'do'; expected one of %v", Verbs)
	default:
		return fmt.Errorf("unknown action %q; expected one of %v", a.Do, Verbs)
	}
	if a.Level != nil && (*a.Level < 0 || *a.Level > 100) {
		return fmt.Errorf("level %d is out of range; expected 0-100", *a.Level)
	}
	if a.Color != "" {
		if _, _, _, err := ParseColor(a.Color); err != nil {
			return err
		}
	}
	return nil
}

// ParseColor parses "#rrggbb".
func ParseColor(s string) (r, g, b uint8, err error) {
	if len(s) != 7 || s[0] != '#' {
		return 0, 0, 0, fmt.Errorf("color %q: expected #rrggbb", s)
	}
	var v [3]uint8
	for i := 0; i < 3; i++ {
		var x uint8
		for _, c := range s[1+2*i : 3+2*i] {
			x <<= 4
			switch {
			case c >= '0' && c <= '9':
				x |= uint8(c - '0')
			case c >= 'a' && c <= 'f':
				x |= uint8(c - 'a' + 10)
			case c >= 'A' && c <= 'F':
				x |= uint8(c - 'A' + 10)
			default:
				return 0, 0, 0, fmt.Errorf("color %q: expected #rrggbb", s)
			}
		}
		v[i] = x
	}
	return v[0], v[1], v[2], nil
}
