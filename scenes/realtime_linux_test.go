package scenes

import (
	"errors"
	"syscall"
	"testing"
	"unsafe"

	"fieldkit/internal/confutil"
)

// policy returns the calling thread's scheduling policy and priority,
// -1 when they cannot be read.
func policy() (int, int) {
	p, _, errno := syscall.RawSyscall(syscall.SYS_SCHED_GETSCHEDULER, 0, 0, 0)
	if errno != 0 {
		return -1, -1
	}
	var param struct{ priority int32 }
	if _, _, errno := syscall.RawSyscall(syscall.SYS_SCHED_GETPARAM, 0, uintptr(unsafe.Pointer(&param)), 0); errno != 0 {
		return -1, -1
	}
	return int(p), int(param.priority)
}

func TestRealtimeThread(t *testing.T) {
	type got struct {
		err      error
		pol, pri int
	}
	ch := make(chan got)
	go func() {
		err := realtimeThread(7)
		pol, pri := policy()
		ch <- got{err, pol, pri}
		// Returning while locked ends the thread with the goroutine.
	}()
	g := <-ch
	switch {
	case g.err == nil:
		if g.pol != schedFIFO || g.pri != 7 {
			t.Fatalf("thread policy %d priority %d, want SCHED_FIFO (1) priority 7", g.pol, g.pri)
		}
	case errors.Is(g.err, syscall.EPERM):
		// Not root and no RLIMIT_RTPRIO: the goroutine stays ordinary.
		if g.pol != 0 {
			t.Fatalf("refused, yet the thread has policy %d", g.pol)
		}
	default:
		t.Fatalf("realtimeThread: %v", g.err)
	}
	// No other goroutine inherits the real-time thread.
	for range 20 {
		done := make(chan int)
		go func() { p, _ := policy(); done <- p }()
		if p := <-done; p != 0 {
			t.Fatalf("an ordinary goroutine runs with policy %d", p)
		}
	}
}

func TestRTPriorityConfig(t *testing.T) {
	for _, c := range []struct {
		in, want int
		bad      bool
	}{{0, DefaultRTPriority, false}, {-1, 0, false}, {1, 1, false}, {99, 99, false}, {-2, 0, true}, {100, 0, true}} {
		p := confutil.NewProblems()
		cfg := Config{RTPriority: c.in}
		cfg.Validate(p)
		if bad := !p.Empty(); bad != c.bad {
			t.Errorf("rt_priority %d: refused=%v, want %v (%v)", c.in, bad, c.bad, p.List())
		}
		if !c.bad && cfg.rtPriority() != c.want {
			t.Errorf("rt_priority %d means %d, want %d", c.in, cfg.rtPriority(), c.want)
		}
	}
}
