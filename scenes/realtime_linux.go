package scenes

import (
	"runtime"
	"syscall"
	"time"
	"unsafe"
)

const schedFIFO = 1 // SCHED_FIFO in <sched.h>

// realtimeThread puts the calling goroutine on an OS thread of its own
// and gives that thread SCHED_FIFO priority prio, so that the kernel does
// not hand the CPU to other threads while a step's last milliseconds are
// polled. It is allowed as root, with CAP_SYS_NICE, or up to the
// process's RLIMIT_RTPRIO (the unit file's LimitRTPRIO).
//
// On success the goroutine must end without unlocking: the runtime then
// ends the thread too, so no other goroutine ever runs at this priority.
// On failure the goroutine is back on an ordinary, shared thread.
func realtimeThread(prio int) error {
	runtime.LockOSThread()
	param := struct{ priority int32 }{int32(prio)}
	_, _, errno := syscall.RawSyscall(syscall.SYS_SCHED_SETSCHEDULER, 0, schedFIFO, uintptr(unsafe.Pointer(&param)))
	if errno != 0 {
		runtime.UnlockOSThread()
		return errno
	}
	return nil
}

// threadSleep blocks the calling thread in the kernel for d. A timeline
// worker waits for its next step this way rather than on a Go timer: a
// timer's wake-up is delivered by whichever thread runs the scheduler,
// an ordinary one that waits its turn behind the box's other work (tens
// of milliseconds at a load of 20), while the kernel wakes a real-time
// thread from nanosleep at once.
//
// The sleep is a raw system call, so the thread keeps its Go processor
// while it sleeps. Through syscall.Nanosleep the runtime takes the
// processor away after 20 µs and gives it to other work; the woken
// thread must then find a free one, and when the box's other goroutines
// hold all of them it parks until one of their threads looks at the
// global run queue: steps 30 to 130 ms late at a load of 2 in the
// scene-jitter bench, matched by no collection. Holding one processor
// of procsPerCore × cores for the last threadLead before a step costs
// less than that.
func threadSleep(d time.Duration) {
	ts := syscall.NsecToTimespec(int64(d))
	// A signal (EINTR) ends the sleep early, on purpose: the runtime
	// signals a thread to stop it for a collection, and a raw system call
	// cannot be stopped inside; resumed, the sleep would hold every other
	// goroutine in that stop for the rest of the slice. The caller's loop
	// sleeps again for what is left, after the stop.
	_, _, _ = syscall.RawSyscall(syscall.SYS_NANOSLEEP, uintptr(unsafe.Pointer(&ts)), 0, 0)
}
