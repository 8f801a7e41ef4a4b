// Package ratelog keeps a flood of one log line from flooding the log: a
// slog.Handler that lets each message (by level and text) through a few
// times per window, drops the rest, and says how many it dropped on the
// next line of that message it lets through.
package ratelog

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Defaults of Options.
const (
	DefaultBurst  = 10
	DefaultWindow = 10 * time.Second
	// maxKeys bounds the messages tracked; messages are constants in the
	// code, so more means something odd, and the table starts over.
	maxKeys = 4096
)

// Options tune the limit: Burst lines of one message per Window.
type Options struct {
	Burst  int
	Window time.Duration
	// Now is the clock (tests); nil is time.Now.
	Now func() time.Time
}

type key struct {
	level slog.Level
	msg   string
}

type count struct {
	start   time.Time
	passed  int
	dropped int
}

type limiter struct {
	o  Options
	mu sync.Mutex
	m  map[key]*count
}

// Handler wraps another handler with the limit. Handlers derived with
// WithAttrs and WithGroup share it.
type Handler struct {
	next slog.Handler
	l    *limiter
}

// New wraps next.
func New(next slog.Handler, o Options) *Handler {
	if o.Burst <= 0 {
		o.Burst = DefaultBurst
	}
	if o.Window <= 0 {
		o.Window = DefaultWindow
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Handler{next: next, l: &limiter{o: o, m: map[key]*count{}}}
}

// Enabled is next's.
func (h *Handler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

// Handle passes r on unless its message is over the limit.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	dropped, ok := h.l.admit(key{r.Level, r.Message})
	if !ok {
		return nil
	}
	if dropped > 0 {
		r = r.Clone()
		r.AddAttrs(slog.Int("dropped_similar", dropped), slog.Duration("dropped_within", h.l.o.Window))
	}
	return h.next.Handle(ctx, r)
}

// WithAttrs wraps next's.
func (h *Handler) WithAttrs(as []slog.Attr) slog.Handler {
	return &Handler{next: h.next.WithAttrs(as), l: h.l}
}

// WithGroup wraps next's.
func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{next: h.next.WithGroup(name), l: h.l}
}

// admit says whether a line of k may go out, and how many were dropped
// since the last one that did.
func (l *limiter) admit(k key) (dropped int, ok bool) {
	now := l.o.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	c, found := l.m[k]
	if !found {
		if len(l.m) >= maxKeys {
			l.m = map[key]*count{}
		}
		c = &count{start: now}
		l.m[k] = c
	}
	if now.Sub(c.start) >= l.o.Window {
		c.start, c.passed = now, 0
	}
	if c.passed >= l.o.Burst {
		c.dropped++
		return 0, false
	}
	c.passed++
	dropped, c.dropped = c.dropped, 0
	return dropped, true
}
