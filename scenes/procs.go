package scenes

import (
	"os"
	"runtime"
)

// ReserveProcs doubles the Go scheduler's processors (GOMAXPROCS) unless
// the environment sets them. A timeline goroutine made runnable while
// every processor runs other work (signing receipts, decoding telemetry,
// or the collector, which stops it to scan its stack) waits for one to
// free up, a millisecond or more; with spare processors it gets one at
// once and the kernel shares the cores, where its real-time thread wins.
// The agent calls it once at start.
func ReserveProcs() {
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(2 * runtime.GOMAXPROCS(0))
	}
}
