package cue

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// What an output learned about one command, for Outcome.Status.
const (
	Sent       = "sent"       // handed to the device or the line; nothing read back yet
	Confirmed  = "confirmed"  // the device or the line reads back the state
	Failed     = "failed"     // refused, or not confirmed in time
	Superseded = "superseded" // a newer command replaced it before it was confirmed
)

// Outcome is what an output learned about the command one step gave it.
type Outcome struct {
	Status string
	At     time.Time
	// Error is the reason for a failure, in the device's own words
	// where it gave them.
	Error string
}

// Reporter hears how the commands of one scene step end. Outputs call it
// from their own goroutines, possibly long after Apply returned; it must
// not block.
type Reporter interface {
	Report(output string, o Outcome)
}

// stepInfo is what the scene engine tells the outputs applying a step:
// one context value for both, made once per step.
type stepInfo struct {
	planned time.Time
	rep     Reporter
}

type stepKey struct{}

// WithStep tells the outputs applying a step when the step was due (to
// measure the cue end to end) and whom to report the outcome to (nil:
// nobody).
func WithStep(ctx context.Context, planned time.Time, rep Reporter) context.Context {
	return context.WithValue(ctx, stepKey{}, stepInfo{planned, rep})
}

// ReporterOf is the reporter WithStep put in ctx (nil when none).
func ReporterOf(ctx context.Context) Reporter {
	s, _ := ctx.Value(stepKey{}).(stepInfo)
	return s.rep
}

// Report tells rep, if any, how output's command ended.
func Report(rep Reporter, output, status string, at time.Time, err string) {
	if rep != nil {
		rep.Report(output, Outcome{Status: status, At: at, Error: err})
	}
}

// Lead is how long before a step's time an output is sent its command,
// so that it lands with the step's other outputs: a fixed time, or
// learned from the output's measured confirmation latency (auto).
type Lead struct {
	Fixed time.Duration
	Auto  bool
}

// MaxLead is the longest lead a config may ask for.
const MaxLead = 2 * time.Second

// ParseLead reads "auto" or a duration from 0 to MaxLead ("120ms").
func ParseLead(s string) (Lead, error) {
	s = strings.TrimSpace(s)
	if s == "auto" {
		return Lead{Auto: true}, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return Lead{}, fmt.Errorf("lead %q: expected a duration such as 120ms, or auto", s)
	}
	if d < 0 || d > MaxLead {
		return Lead{}, fmt.Errorf("lead %v: expected 0-%v, or auto", d, MaxLead)
	}
	return Lead{Fixed: d}, nil
}

// UnmarshalText lets a config file say lead: 120ms or lead: auto.
func (l *Lead) UnmarshalText(b []byte) error {
	v, err := ParseLead(string(b))
	if err != nil {
		return err
	}
	*l = v
	return nil
}

// MarshalText is the inverse of UnmarshalText.
func (l Lead) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

func (l Lead) String() string {
	if l.Auto {
		return "auto"
	}
	return l.Fixed.String()
}

// Leader is an output sent its command ahead of a step's time: the
// engine calls Lead on every dispatch, so it must be cheap.
type Leader interface {
	Lead() time.Duration
}
