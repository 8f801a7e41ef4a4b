// Package status is the printer state shared by the language packages
// (which parse status replies) and the printer service (which polls and
// reports): seven states, and a Report that says why.
package status

import (
	"fmt"
	"strings"
)

// State is what a printer can do right now.
type State uint8

// States. Unknown is the zero value: a printer that has not answered is
// never assumed ready.
const (
	Unknown State = iota
	Ready
	PaperLow  // printing, but the roll is near its end
	PaperOut  // paper (or ribbon) end: load paper
	CoverOpen // cover or print head open: close it
	Offline   // paused or off line for another reason
	Error     // a mechanical, cutter, temperature or other fault
)

var names = [...]string{"unknown", "ready", "paper_low", "paper_out", "cover_open", "offline", "error"}

func (s State) String() string {
	if int(s) < len(names) {
		return names[s]
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// Parse is the inverse of String.
func Parse(s string) (State, error) {
	for i, n := range names {
		if n == s {
			return State(i), nil
		}
	}
	return Unknown, fmt.Errorf("printer state %q: want one of %s", s, strings.Join(names[:], ", "))
}

// MarshalText writes the name, so JSON and MQTT payloads carry "paper_out".
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a name.
func (s *State) UnmarshalText(b []byte) error {
	v, err := Parse(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// CanPrint reports whether a job may be sent in state s.
func (s State) CanPrint() bool { return s == Ready || s == PaperLow }

// severity orders states for Worst: what an operator must act on first.
// A specific cause (cover open, paper out) outranks the generic error and
// offline flags that printers raise along with it.
var severity = [...]int{
	Ready:     0,
	PaperLow:  1,
	Unknown:   2,
	Offline:   3,
	Error:     4,
	PaperOut:  5,
	CoverOpen: 6,
}

func (s State) rank() int {
	if int(s) < len(severity) {
		return severity[s]
	}
	return severity[Unknown]
}

// Report is a parsed status: the state and the flags that led to it.
type Report struct {
	State State `json:"state"`
	// Flags are the conditions the printer reported, in its words
	// ("paper near end", "cover open", "ribbon out").
	Flags []string `json:"flags,omitempty"`
}

func (r Report) String() string {
	if len(r.Flags) == 0 {
		return r.State.String()
	}
	return r.State.String() + " (" + strings.Join(r.Flags, ", ") + ")"
}

// Worst merges reports from several queries (ESC/POS asks four times):
// the most severe state, and every flag.
func Worst(rs ...Report) Report {
	if len(rs) == 0 {
		return Report{State: Unknown}
	}
	out := Report{State: rs[0].State}
	for _, r := range rs {
		if r.State.rank() > out.State.rank() {
			out.State = r.State
		}
		out.Flags = append(out.Flags, r.Flags...)
	}
	return out
}

// Probe is one status exchange the service performs: write Query, read
// until Complete says the reply is whole (or the timeout ends), then
// Parse it. The language packages build them; they do no I/O.
type Probe struct {
	Name  string
	Query []byte
	// Complete returns how many leading bytes of buf form the whole
	// reply, or 0 while more are needed.
	Complete func(buf []byte) int
	Parse    func(reply []byte) (Report, error)
}
