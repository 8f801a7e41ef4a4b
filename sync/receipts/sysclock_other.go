//go:build !linux

package receipts

// KernelClock cannot tell on this platform; it says unsynchronised so
// that receipts never claim a time they cannot vouch for.
type KernelClock struct{}

func (KernelClock) ClockSynced() bool { return false }
