package main

import (
	"fmt"

	"fieldkit/drivers/button"
	"fieldkit/drivers/cue"
	"fieldkit/drivers/outputs"
	"fieldkit/firmware-agent/config"
)

// outputSet is the cue outputs (GPIO, LED strips, haptics, MQTT devices)
// by name, and the buttons, which are parts of their own.
type outputSet struct {
	targets map[string]cue.Target
	buttons []buttonPart
}

func newOutputs(cfg *config.Config, p plumbing, board outputs.Board) (*outputSet, error) {
	targets, buttons, err := outputs.Build(cfg.Cues, outputs.Deps{
		Board: board, MQTT: p.mqtt, Bus: p.bus, Clock: p.clock, Log: p.log,
	})
	if err != nil {
		return nil, fmt.Errorf("outputs: %w", err)
	}
	s := &outputSet{targets: targets}
	for _, b := range buttons {
		s.buttons = append(s.buttons, buttonPart{b})
	}
	return s, nil
}

// Close releases every output's pins, buses and goroutines.
func (s *outputSet) Close() error {
	outputs.CloseAll(s.targets)
	return nil
}

// Status is the outputs section of /api/status.
func (s *outputSet) Status() any { return outputStates(s.targets) }

type buttonPart struct{ *button.Button }

func (b buttonPart) Name() string { return "button " + b.Button.Name() }

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
