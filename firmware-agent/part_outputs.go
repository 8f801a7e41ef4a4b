package main

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"

	"fieldkit/drivers/button"
	"fieldkit/drivers/cue"
	"fieldkit/drivers/mqttdev"
	"fieldkit/drivers/outputs"
	"fieldkit/firmware-agent/config"
	"fieldkit/internal/doctor"
)

// outputSet is the cue outputs (GPIO, LED strips, haptics, MQTT devices)
// by name, and the buttons, which are parts of their own.
type outputSet struct {
	targets map[string]cue.Target
	buttons []buttonPart
}

func newOutputs(cfg *config.Config, p plumbing, board outputs.Board) (*outputSet, error) {
	met, err := cue.NewMetrics(p.metrics)
	if err != nil {
		return nil, fmt.Errorf("outputs: metrics: %w", err)
	}
	targets, buttons, err := outputs.Build(cfg.Cues, outputs.Deps{
		Board: board, MQTT: p.mqtt, Bus: p.bus, Clock: p.clock, Log: p.log, Metrics: met,
	})
	if err != nil {
		return nil, fmt.Errorf("outputs: %w", err)
	}
	// Before any scene can run (scenes are built after the outputs and
	// run with the parts): whatever a killed agent left on goes off.
	driveSafe(p.log, targets)
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

// Checks are the pre-show checks of the outputs that hear back from
// their device.
func (s *outputSet) Checks() []doctor.Check {
	names := make([]string, 0, len(s.targets))
	for n := range s.targets {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []doctor.Check
	for _, n := range names {
		if p, ok := s.targets[n].(interface{ PreShow() mqttdev.Readiness }); ok {
			out = append(out, doctor.Check{Name: "output " + n, Run: func(context.Context) doctor.Result {
				r := p.PreShow()
				return doctor.Result{Status: doctor.Status(r.Level), Detail: r.Detail, Fix: r.Fix}
			}})
		}
	}
	return out
}
