package scenes

import (
	"os"
	"runtime"
	"runtime/debug"
)

// Scheduler and collector settings for the scene timelines; see
// ReserveProcs. The environment (GOMAXPROCS, GOGC, GOMEMLIMIT) wins.
const (
	procsPerCore = 4
	gcPercent    = 400
	gcMemLimit   = 96 << 20
)

// ReserveProcs sets the Go runtime up for timelines that must not be
// late, once, at the agent's start.
//
// Processors (GOMAXPROCS): four per core. A timeline's thread that wakes
// for a step needs a free processor; on a busy box the threads holding
// the others may themselves wait for a core, so a spare one must be
// there. Doubling was not enough at a load of 20 on two cores (steps up
// to 40 ms late).
//
// Collector: a collection stops every goroutine twice and, while it
// marks, takes processors and slows allocation; with the default pace
// (a collection each time the heap doubles) the scene-jitter bench put
// p99 lateness at 5 ms, and at 0.1 ms with the collector off. So the
// heap may grow to five times what is live (GOGC=400), and the memory
// limit (96 MiB) brings collections back before that costs too much
// memory; the agent's live heap is a few MiB.
func ReserveProcs() {
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(procsPerCore * runtime.NumCPU())
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(gcMemLimit)
	}
}
