package main

import (
	"context"
	"fmt"

	"fieldkit/battery"
	"fieldkit/firmware-agent/config"
	"fieldkit/internal/doctor"
	"fieldkit/internal/health"
)

// batteryPart is the battery watch of the encoder rigs.
type batteryPart struct {
	*battery.Watch
	health *health.Registry
}

func (batteryPart) Name() string    { return "battery" }
func (batteryPart) Section() string { return "batteries" }
func (b batteryPart) Status() any   { return b.States() }

// Run runs the watch, with the part degraded while a rig's source fails.
func (b batteryPart) Run(ctx context.Context) error {
	return judged(ctx, b.health, b.Name(), func() (health.State, string) { return batteryHealth(b.States()) }, b.Watch.Run)
}

func newBattery(cfg *config.Config, p plumbing, board battery.Board) (batteryPart, error) {
	w, err := battery.New(cfg.Batteries, battery.Deps{
		Box: cfg.Box, Version: version, Board: board, MQTT: p.mqtt, Bus: p.bus, Clock: p.clock, Log: p.log, Metrics: p.metrics,
	})
	if err != nil {
		return batteryPart{}, fmt.Errorf("batteries: %w", err)
	}
	return batteryPart{w, p.health}, nil
}

// batteryOfflineChecks are the watch's checks without a running agent:
// built with no board or broker, it checks what the config alone can.
func batteryOfflineChecks(cfg *config.Config) []doctor.Check {
	w, err := battery.New(cfg.Batteries, battery.Deps{Box: cfg.Box})
	if err != nil {
		return []doctor.Check{{Name: "batteries", Run: func(context.Context) doctor.Result {
			return doctor.Failf("fix the batteries: section", "%v", fmt.Errorf("batteries: %w", err))
		}}}
	}
	return w.Checks()
}
