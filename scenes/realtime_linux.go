package scenes

import (
	"runtime"
	"syscall"
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
