package main

import (
	"context"
	"fmt"
	"io"

	"fieldkit/firmware-agent/config"
	"fieldkit/internal/doctor"
	"fieldkit/internal/health"
	"fieldkit/printer/printcli"
	"fieldkit/printer/service"
)

// printersPart is the label printers: one worker per printer over a
// durable job queue.
type printersPart struct {
	*service.Service
	health *health.Registry
}

func (printersPart) Name() string  { return "printers" }
func (p printersPart) Status() any { return p.States() }

// Run runs the printers, with the part degraded while any cannot print.
func (p printersPart) Run(ctx context.Context) error {
	return judged(ctx, p.health, p.Name(), func() (health.State, string) { return printersHealth(p.States()) }, p.Service.Run)
}

func newPrinters(cfg *config.Config, p plumbing) (printersPart, error) {
	svc, err := service.New(cfg.Printers, service.Deps{
		DataDir: cfg.DataDir, Bus: p.bus, MQTT: p.mqtt, Clock: p.clock, Log: p.log, Metrics: p.metrics,
	})
	if err != nil {
		return printersPart{}, fmt.Errorf("printers: %w", err)
	}
	return printersPart{svc, p.health}, nil
}

// printerOfflineChecks stand for the printers' checks when no agent runs:
// only the running agent's own connection may ask a printer.
func printerOfflineChecks(cfg *config.Config) []doctor.Check {
	if len(cfg.Printers) == 0 {
		return nil
	}
	return []doctor.Check{{Name: "printers", Run: func(context.Context) doctor.Result {
		return doctor.Warnf("start the agent and run doctor again: printers are checked through the agent's own connection",
			"the agent is not running, so the printers were not asked")
	}}}
}

func cmdPrint(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, rest, err := configFromArgs(args, stderr)
	if err != nil {
		return err
	}
	return printcli.RunCLI(ctx, rest, stdout, stderr, printcli.Env{BaseURL: agentURL(cfg), Token: func() string { return agentToken(cfg) }, Printers: cfg.Printers})
}
