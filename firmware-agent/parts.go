package main

import (
	"context"
	"io"

	"fieldkit/internal/doctor"
	"fieldkit/internal/httpapi"
	"fieldkit/internal/lifecycle"
)

// part is one long-running piece of the agent: Run returns when ctx ends,
// and the agent's errgroup owns it (restarting it with backoff when it
// fails, see internal/lifecycle).
type part interface {
	Name() string
	Run(ctx context.Context) error
}

// What a part may offer besides running; add finds each by interface
// assertion, so a part declares what it does by having the method.
type (
	// router parts serve an HTTP API.
	router interface{ Routes(r *httpapi.Router) }
	// checker parts add pre-show checks (doctor, /api/preflight).
	checker interface{ Checks() []doctor.Check }
	// statuser parts add a section to /api/status, under their Name or
	// under Section when they have one.
	statuser  interface{ Status() any }
	sectioner interface{ Section() string }
	// reloader parts reload on SIGHUP.
	reloader interface{ Reload() error }
	// critical parts cannot run degraded: their failure stops the agent.
	critical interface{ Critical() bool }
)

// add hands p to the errgroup and plugs in whatever else it offers.
func (a *app) add(p part) {
	crit := false
	if c, ok := p.(critical); ok {
		crit = c.Critical()
	}
	a.group.Add(lifecycle.Part{Name: p.Name(), Critical: crit, Run: p.Run})
	if r, ok := p.(router); ok {
		r.Routes(a.router)
	}
	if c, ok := p.(checker); ok {
		a.checks = append(a.checks, c.Checks()...)
	}
	if s, ok := p.(statuser); ok {
		key := p.Name()
		if k, ok := p.(sectioner); ok {
			key = k.Section()
		}
		a.status[key] = s.Status
	}
	if r, ok := p.(reloader); ok {
		a.reload = append(a.reload, r.Reload)
	}
	// A part that holds files or devices is closed after every part
	// stopped, or at once when a part built after it fails to build.
	if c, ok := p.(io.Closer); ok {
		a.closers = append(a.closers, c.Close)
	}
	a.parts = append(a.parts, p)
}

// partFunc is a part that is only a loop: the agent's own (mqtt, http,
// watchdog, sighup).
type partFunc struct {
	name     string
	critical bool
	run      func(ctx context.Context) error
}

func (p partFunc) Name() string                  { return p.name }
func (p partFunc) Run(ctx context.Context) error { return p.run(ctx) }
func (p partFunc) Critical() bool                { return p.critical }
