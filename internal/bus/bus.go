// Package bus is the in-process event bus: parts publish events on
// MQTT-style topics and others subscribe with topic filters. It mirrors
// the MQTT topics so that scenes trigger on local and remote events alike.
package bus

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"fieldkit/internal/topic"
)

// Event is one message on the bus.
type Event struct {
	Topic   string
	Payload []byte
	At      time.Time
}

// Bus fans events out to subscribers. Publish never blocks: a subscriber
// that falls behind by more than its buffer loses events, and the loss is
// counted and logged, because a stuck consumer must not stall a cue.
type Bus struct {
	mu      sync.RWMutex
	subs    map[*Subscription]struct{}
	dropped atomic.Uint64
	log     *slog.Logger
	now     func() time.Time
}

// New returns an empty bus.
func New(log *slog.Logger) *Bus {
	if log == nil {
		log = slog.Default()
	}
	return &Bus{subs: map[*Subscription]struct{}{}, log: log, now: time.Now}
}

// Subscription receives the events matching its filter on C.
type Subscription struct {
	Filter string
	c      chan Event
	b      *Bus
	once   sync.Once
}

// C is the channel events arrive on; it is closed by Close.
func (s *Subscription) C() <-chan Event { return s.c }

// Close unsubscribes and closes C.
func (s *Subscription) Close() {
	s.once.Do(func() {
		s.b.mu.Lock()
		delete(s.b.subs, s)
		close(s.c)
		s.b.mu.Unlock()
	})
}

// Subscribe returns a subscription for filter with room for buf pending
// events (at least 1).
func (b *Bus) Subscribe(filter string, buf int) *Subscription {
	if buf < 1 {
		buf = 1
	}
	s := &Subscription{Filter: filter, c: make(chan Event, buf), b: b}
	b.mu.Lock()
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	return s
}

// Publish delivers payload on topic to every matching subscriber.
func (b *Bus) Publish(t string, payload []byte) {
	ev := Event{Topic: t, Payload: payload, At: b.now()}
	b.mu.RLock()
	defer b.mu.RUnlock()
	for s := range b.subs {
		if !topic.Match(s.Filter, t) {
			continue
		}
		select {
		case s.c <- ev:
		default:
			b.dropped.Add(1)
			b.log.Warn("event bus subscriber is behind; event dropped", "filter", s.Filter, "topic", t)
		}
	}
}

// Dropped is the number of events lost to full subscribers.
func (b *Bus) Dropped() uint64 { return b.dropped.Load() }
