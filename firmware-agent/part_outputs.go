package main

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"

	"fieldkit/drivers/cue"
	"fieldkit/drivers/outputs"
	"fieldkit/internal/health"
)

// The cue outputs (GPIO, LED strips, haptics, MQTT devices) and buttons.
func init() { partBuilders = append(partBuilders, buildOutputs) }

func buildOutputs(_ context.Context, a *app) error {
	targets, buttons, err := outputs.Build(a.cfg.Cues, outputs.Deps{
		Board: a.board, MQTT: a.mqtt, Bus: a.bus, Clock: a.clock, Log: a.log,
	})
	if err != nil {
		return fmt.Errorf("outputs: %w", err)
	}
	a.targets = targets
	// Before any scene can run (scenes start with the parts, after every
	// builder): whatever a killed agent left on goes off.
	driveSafe(a.log, targets)
	a.closers = append(a.closers, func() error { outputs.CloseAll(targets); return nil })
	for _, b := range buttons {
		a.addPart("button "+b.Name(), false, b.Run)
	}
	if len(targets) > 0 {
		a.health.Set("outputs", health.OK, fmt.Sprintf("%d outputs", len(targets)))
	}
	a.status["outputs"] = func() any { return outputStates(targets) }
	return nil
}

// OutputState is one output in /api/status.
type OutputState struct {
	Kind  string `json:"kind"`
	State any    `json:"state"`
}

func outputStates(ts map[string]cue.Target) map[string]OutputState {
	out := make(map[string]OutputState, len(ts))
	for n, t := range ts {
		out[n] = OutputState{Kind: t.Kind(), State: t.State()}
	}
	return out
}

// driveSafe puts every output that has a safe state in it. GPIO and LED
// strips switch at once; an MQTT device's off is sent once the broker
// link is up (and after every reconnect), ahead of any scene's commands.
func driveSafe(log *slog.Logger, ts map[string]cue.Target) {
	names := make([]string, 0, len(ts))
	for n := range ts {
		names = append(names, n)
	}
	sort.Strings(names)
	var done []string
	for _, n := range names {
		s, ok := ts[n].(cue.Safer)
		if !ok {
			continue
		}
		if err := s.Safe(context.Background()); err != nil {
			log.Error("cannot put output in its safe state", "output", n, "err", err)
			continue
		}
		done = append(done, n)
	}
	if len(done) > 0 {
		log.Info("outputs put in their safe state (off)", "outputs", strings.Join(done, ", "))
	}
}
