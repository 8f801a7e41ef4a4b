// Package clocksync tells whether the system clock has been set by NTP or
// an RTC. A Pi without an RTC boots at 1970 (or at the last saved time)
// until NTP answers, and a receipt stamped before then must say so.
package clocksync

import (
	"golang.org/x/sys/unix"
)

// Checker reports whether the clock is synchronised; parts take it as an
// interface so tests can choose the answer.
type Checker interface {
	Synced() bool
}

// Kernel asks the kernel through adjtimex: NTP daemons (systemd-timesyncd,
// chrony, ntpd) clear STA_UNSYNC once they have disciplined the clock.
type Kernel struct{}

// Synced reports whether the kernel considers the clock synchronised.
func (Kernel) Synced() bool {
	var tx unix.Timex
	state, err := unix.Adjtimex(&tx)
	if err != nil {
		return false
	}
	return state != unix.TIME_ERROR && tx.Status&unix.STA_UNSYNC == 0
}

// Fixed is a Checker with a set answer, for tests and the sim board.
type Fixed bool

// Synced returns the set answer.
func (f Fixed) Synced() bool { return bool(f) }

// Func adapts a function to Checker, for tests that change the answer.
type Func func() bool

// Synced calls f.
func (f Func) Synced() bool { return f() }
