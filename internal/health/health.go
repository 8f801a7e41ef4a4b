// Package health keeps the state of each part of the agent (ok, degraded,
// failed, with a reason) for the status API, the crew page and metrics.
package health

import (
	"sort"
	"sync"
	"time"
)

// State of one part.
type State string

const (
	Starting State = "starting"
	OK       State = "ok"
	Degraded State = "degraded"
	Failed   State = "failed"
	Stopped  State = "stopped"
)

// Part is the reported status of one part.
type Part struct {
	Name   string    `json:"name"`
	State  State     `json:"state"`
	Reason string    `json:"reason,omitempty"`
	Since  time.Time `json:"since"`
}

// Registry holds part states; it is safe for concurrent use.
type Registry struct {
	mu       sync.Mutex
	parts    map[string]Part
	onChange []func(Part)
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{parts: map[string]Part{}} }

// Set records the state of part name. Repeating the same state and reason
// keeps the original Since.
func (r *Registry) Set(name string, st State, reason string) {
	r.mu.Lock()
	old, ok := r.parts[name]
	if ok && old.State == st && old.Reason == reason {
		r.mu.Unlock()
		return
	}
	p := Part{Name: name, State: st, Reason: reason, Since: time.Now().UTC()}
	r.parts[name] = p
	hooks := append([]func(Part){}, r.onChange...)
	r.mu.Unlock()
	for _, h := range hooks {
		h(p)
	}
}

// OnChange calls f (outside the lock) after every state change.
func (r *Registry) OnChange(f func(Part)) {
	r.mu.Lock()
	r.onChange = append(r.onChange, f)
	r.mu.Unlock()
}

// Get returns the state of one part.
func (r *Registry) Get(name string) (Part, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.parts[name]
	return p, ok
}

// Snapshot returns all parts sorted by name.
func (r *Registry) Snapshot() []Part {
	r.mu.Lock()
	out := make([]Part, 0, len(r.parts))
	for _, p := range r.parts {
		out = append(out, p)
	}
	r.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
