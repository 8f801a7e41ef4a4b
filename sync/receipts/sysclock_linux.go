package receipts

import "golang.org/x/sys/unix"

// KernelClock reads the kernel's NTP state with adjtimex(2): the clock is
// synchronised when the kernel is not in TIME_ERROR and STA_UNSYNC is
// clear (chrony, systemd-timesyncd and ntpd clear it once they set the
// clock; an RTC-less box that just booted has it set).
type KernelClock struct{}

func (KernelClock) ClockSynced() bool {
	var tx unix.Timex
	state, err := unix.Adjtimex(&tx)
	if err != nil {
		return false
	}
	return state != unix.TIME_ERROR && tx.Status&unix.STA_UNSYNC == 0
}
