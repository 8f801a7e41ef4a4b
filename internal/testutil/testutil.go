// Package testutil holds helpers for tests only.
package testutil

import (
	"testing"
	"time"
)

// WaitFor polls cond until it holds, failing t with what when it does not
// within d. Tests wait on a condition with a deadline, never for a while:
// the poll starts at 1 ms, so a fast condition costs little, and backs off
// to 10 ms, so a slow one does not spin.
func WaitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	pause := time.Millisecond
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(pause)
		pause = min(2*pause, 10*time.Millisecond)
	}
}
