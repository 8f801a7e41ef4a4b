package main

import (
	"context"
	"fmt"

	"fieldkit/drivers/cue"
	"fieldkit/drivers/outputs"
	"fieldkit/internal/health"
)

// The cue outputs (GPIO, LED strips, haptics, MQTT devices) and buttons.
func init() { partBuilders = append(partBuilders, buildOutputs) }

func buildOutputs(_ context.Context, a *app) error {
	met, err := cue.NewMetrics(a.metrics)
	if err != nil {
		return fmt.Errorf("outputs: metrics: %w", err)
	}
	targets, buttons, err := outputs.Build(a.cfg.Cues, outputs.Deps{
		Board: a.board, MQTT: a.mqtt, Bus: a.bus, Clock: a.clock, Log: a.log, Metrics: met,
	})
	if err != nil {
		return fmt.Errorf("outputs: %w", err)
	}
	a.targets = targets
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
