// Package backoff computes full-jitter exponential backoff and waits on an
// injected clock, so that retry loops are testable without sleeping.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"

	"fieldkit/internal/clock"
)

// Backoff is full-jitter exponential backoff: attempt n waits a uniformly
// random time in [0, min(Cap, Base*2^n)).
type Backoff struct {
	Base time.Duration
	Cap  time.Duration
	// Rand returns a float in [0,1); nil means math/rand.
	Rand func() float64

	attempt int
}

// Next returns the wait before the next attempt and counts it.
func (b *Backoff) Next() time.Duration {
	ceil := b.Cap
	if b.attempt < 62 {
		if d := b.Base << b.attempt; d > 0 && d < b.Cap {
			ceil = d
		}
	}
	b.attempt++
	r := b.Rand
	if r == nil {
		r = rand.Float64
	}
	return time.Duration(r() * float64(ceil))
}

// Reset starts over after a success.
func (b *Backoff) Reset() { b.attempt = 0 }

// Attempts is how many waits were handed out since the last Reset.
func (b *Backoff) Attempts() int { return b.attempt }

// Sleep waits d on clk, or until ctx ends (returning its error).
func Sleep(ctx context.Context, clk clock.Clock, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := clk.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C():
		return nil
	}
}
