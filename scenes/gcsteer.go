package scenes

import (
	"runtime"
	rtmetrics "runtime/metrics"
	"sync"
	"sync/atomic"
	"time"
)

// A collection stops every goroutine twice, a timeline's too. On a quiet
// box each stop takes a millisecond or two, on a busy one tens of
// milliseconds (it waits for every thread holding a processor, and the
// kernel may have put those aside); a step that falls into one is that
// late. Collections start when the heap reaches its goal, at a moment
// that has nothing to do with the show. So a worker that has just run a
// step and has gcGap or more until the next one starts the collection
// that is coming anyway, when the heap has grown past steerAt of its goal:
// its stops then fall between steps.
const (
	gcGap   = 25 * time.Millisecond
	steerAt = 0.6
)

var steer struct {
	mu      sync.Mutex
	samples []rtmetrics.Sample
	running atomic.Bool
}

// steerGC starts a collection in the background if one is near.
func steerGC() {
	if steer.running.Load() || !gcNear() {
		return
	}
	if steer.running.CompareAndSwap(false, true) {
		go func() {
			defer steer.running.Store(false)
			runtime.GC()
		}()
	}
}

// gcNear reports whether the heap has grown past steerAt of the goal at
// which the runtime would start a collection by itself. Reading these
// metrics stops nothing.
func gcNear() bool {
	steer.mu.Lock()
	defer steer.mu.Unlock()
	if steer.samples == nil {
		steer.samples = []rtmetrics.Sample{{Name: "/gc/heap/goal:bytes"}, {Name: "/memory/classes/heap/objects:bytes"}}
	}
	rtmetrics.Read(steer.samples)
	goal, heap := steer.samples[0].Value, steer.samples[1].Value
	if goal.Kind() != rtmetrics.KindUint64 || heap.Kind() != rtmetrics.KindUint64 || goal.Uint64() == 0 {
		return false
	}
	return float64(heap.Uint64()) >= steerAt*float64(goal.Uint64())
}
