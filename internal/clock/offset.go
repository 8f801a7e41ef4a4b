package clock

import "time"

// Offset returns c read d ahead (or behind, for a negative d): a box whose
// clock is off, for tests of the checks that must notice one. Timers run
// on c, since a duration is the same on both.
func Offset(c Clock, d time.Duration) Clock { return offsetClock{c, d} }

type offsetClock struct {
	c Clock
	d time.Duration
}

func (o offsetClock) Now() time.Time                  { return o.c.Now().Add(o.d) }
func (o offsetClock) Since(t time.Time) time.Duration { return o.Now().Sub(t) }
func (o offsetClock) NewTimer(d time.Duration) Timer  { return o.c.NewTimer(d) }
