package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"fieldkit/battery"
	"fieldkit/internal/health"
	"fieldkit/printer/service"
)

// judgeEvery is how often a part's health is judged from what it needs.
const judgeEvery = time.Second

// judged runs run and, while it runs, sets part name's health from
// judge, so that a part whose device or link is gone says degraded with
// the reason instead of staying ok because its loop is alive; and ok again
// once judge finds it back. The goroutine is run's: it ends before run's
// return is reported, so the lifecycle's failed/stopped has the last word.
func judged(ctx context.Context, reg *health.Registry, name string, judge func() (health.State, string), run func(ctx context.Context) error) error {
	jctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(judgeEvery)
		defer t.Stop()
		for {
			select {
			case <-jctx.Done():
				return
			case <-t.C:
				st, reason := judge()
				reg.Set(name, st, reason)
			}
		}
	}()
	defer func() { cancel(); wg.Wait() }()
	return run(ctx)
}

// printersHealth: degraded while any printer cannot print (unreachable,
// no answer, paper out, cover open), naming each and why.
func printersHealth(states []service.PrinterState) (health.State, string) {
	var bad []string
	for _, s := range states {
		if s.Updated.IsZero() || s.State.CanPrint() {
			continue
		}
		why := s.State.String()
		if len(s.Flags) > 0 {
			why += " (" + strings.Join(s.Flags, "; ") + ")"
		}
		if s.Parked {
			why += ", queue parked"
		}
		bad = append(bad, s.Name+": "+why)
	}
	if len(bad) == 0 {
		return health.OK, ""
	}
	return health.Degraded, strings.Join(bad, "; ")
}

// batteryHealth: degraded while a rig's source fails or its reading is
// stale.
func batteryHealth(states []battery.State) (health.State, string) {
	var bad []string
	for _, s := range states {
		switch {
		case s.Error != "":
			bad = append(bad, fmt.Sprintf("%s: source %s fails: %s", s.Rig, s.Source, s.Error))
		case s.Stale:
			bad = append(bad, fmt.Sprintf("%s: no reading from %s lately (stale)", s.Rig, s.Source))
		}
	}
	if len(bad) == 0 {
		return health.OK, ""
	}
	return health.Degraded, strings.Join(bad, "; ")
}
