// Package deps holds the defaults of the dependencies nearly every part
// and driver takes, in one place: a nil clock is the real clock, a nil
// logger the process's default logger. A constructor writes
//
//	d.Clock, d.Log = deps.Clock(d.Clock), deps.Log(d.Log)
//
// so that a test or a tool may leave either out.
package deps

import (
	"log/slog"

	"fieldkit/internal/clock"
)

// Clock returns c, or the real clock when c is nil.
func Clock(c clock.Clock) clock.Clock {
	if c == nil {
		return clock.Real()
	}
	return c
}

// Log returns l, or slog.Default() when l is nil.
func Log(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.Default()
	}
	return l
}
