package tspl

import (
	"errors"
	"fmt"

	"fieldkit/printer/status"
)

// ErrBadReply is wrapped when the reply to ESC !? is not one byte.
var ErrBadReply = errors.New("tspl: bad status reply")

// StatusQuery is ESC !?, answered at any time (even in an error state)
// with one status byte.
var StatusQuery = []byte{0x1b, '!', '?'}

// ParseStatus decodes the status byte:
//
//	bit 0 head opened      → cover open
//	bit 1 paper jam        → error
//	bit 2 out of paper     → paper out
//	bit 3 out of ribbon    → paper out (a consumable to load)
//	bit 4 pause            → offline
//	bit 5 printing         → ready (busy, flagged)
//	bit 6 cover opened     → cover open
//	bit 7 temperature out of range → error
//
// Any byte is a valid status, so a garbled line cannot be told from a
// real state here; the service checks the reply's length and timing.
func ParseStatus(b byte) status.Report {
	r := status.Report{State: status.Ready}
	bits := []struct {
		st   status.State
		flag string
	}{
		{status.CoverOpen, "head open"},
		{status.Error, "paper jam"},
		{status.PaperOut, "paper out"},
		{status.PaperOut, "ribbon out"},
		{status.Offline, "paused"},
		{status.Ready, "printing"},
		{status.CoverOpen, "cover open"},
		{status.Error, "temperature out of range"},
	}
	for i, bit := range bits {
		if b&(1<<i) != 0 {
			r.State = status.Worst(r, status.Report{State: bit.st}).State
			r.Flags = append(r.Flags, bit.flag)
		}
	}
	return r
}

// Probes returns the one status exchange TSPL needs.
func Probes() []status.Probe {
	return []status.Probe{{
		Name:  "ESC !?",
		Query: StatusQuery,
		Complete: func(buf []byte) int {
			if len(buf) >= 1 {
				return 1
			}
			return 0
		},
		Parse: func(reply []byte) (status.Report, error) {
			if len(reply) != 1 {
				return status.Report{State: status.Error, Flags: []string{"garbled status"}},
					fmt.Errorf("%w: %d bytes, want 1", ErrBadReply, len(reply))
			}
			return ParseStatus(reply[0]), nil
		},
	}}
}
