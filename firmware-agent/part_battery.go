package main

import (
	"context"
	"fmt"

	"fieldkit/drivers/battery"
	"fieldkit/internal/config"
	"fieldkit/internal/doctor"
)

// The battery watch of the encoder rigs.
func init() {
	partBuilders = append(partBuilders, buildBattery)
	offlineCheckBuilders = append(offlineCheckBuilders, func(_ context.Context, cfg *config.Config) []doctor.Check {
		w, err := newBatteryWatch(cfg, nil)
		if err != nil {
			return []doctor.Check{{Name: "batteries", Run: func(context.Context) doctor.Result {
				return doctor.Failf("fix the batteries: section", "%v", err)
			}}}
		}
		return w.Checks()
	})
}

func newBatteryWatch(cfg *config.Config, a *app) (*battery.Watch, error) {
	d := battery.Deps{Box: cfg.Box}
	if a != nil {
		d = battery.Deps{Box: cfg.Box, Version: version, Board: a.board, MQTT: a.mqtt, Bus: a.bus, Clock: a.clock, Log: a.log, Metrics: a.metrics}
	}
	w, err := battery.New(cfg.Batteries, d)
	if err != nil {
		return nil, fmt.Errorf("batteries: %w", err)
	}
	return w, nil
}

func buildBattery(_ context.Context, a *app) error {
	if len(a.cfg.Batteries) == 0 {
		return nil
	}
	w, err := newBatteryWatch(a.cfg, a)
	if err != nil {
		return err
	}
	a.addPart("battery", false, w.Run)
	w.Routes(a.router)
	a.checks = append(a.checks, w.Checks()...)
	a.status["batteries"] = func() any { return w.States() }
	return nil
}
