package testutil

import (
	"sync/atomic"
	"testing"
	"time"
)

func TestWaitForHolds(t *testing.T) {
	var n atomic.Int32
	go func() {
		for i := 0; i < 3; i++ {
			n.Add(1)
		}
	}()
	WaitFor(t, 5*time.Second, "three adds", func() bool { return n.Load() == 3 })
}

// fatal records a failure instead of ending the test.
type fatal struct {
	testing.TB
	msg string
}

func (f *fatal) Helper() {}
func (f *fatal) Fatalf(format string, args ...any) {
	f.msg = format
	panic(f)
}

func TestWaitForTimesOut(t *testing.T) {
	f := &fatal{TB: t}
	func() {
		defer func() {
			if r := recover(); r != f {
				panic(r)
			}
		}()
		WaitFor(f, 20*time.Millisecond, "never", func() bool { return false })
	}()
	if f.msg == "" {
		t.Fatal("a condition that never held did not fail the test")
	}
}
