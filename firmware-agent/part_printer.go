package main

import (
	"context"
	"fmt"
	"io"

	"fieldkit/internal/config"
	"fieldkit/internal/doctor"
	"fieldkit/printer/printcli"
	"fieldkit/printer/service"
)

// The label printers: one worker per printer over a durable job queue,
// and the print command.
func init() {
	partBuilders = append(partBuilders, buildPrinters)
	subcommands["print"] = cmdPrint
	offlineCheckBuilders = append(offlineCheckBuilders, func(ctx context.Context, cfg *config.Config) []doctor.Check {
		if len(cfg.Printers) == 0 {
			return nil
		}
		return []doctor.Check{{Name: "printers", Run: func(context.Context) doctor.Result {
			return doctor.Warnf("start the agent and run doctor again: printers are checked through the agent's own connection",
				"the agent is not running, so the printers were not asked")
		}}}
	})
}

func buildPrinters(_ context.Context, a *app) error {
	if len(a.cfg.Printers) == 0 {
		return nil
	}
	svc, err := service.New(a.cfg.Printers, service.Deps{
		DataDir: a.cfg.DataDir, Bus: a.bus, MQTT: a.mqtt, Clock: a.clock, Log: a.log, Metrics: a.metrics,
	})
	if err != nil {
		return fmt.Errorf("printers: %w", err)
	}
	a.printerSvc = svc
	a.addPart("printers", false, svc.Run)
	svc.Routes(a.router)
	a.checks = append(a.checks, svc.Checks()...)
	a.status["printers"] = func() any { return svc.States() }
	return nil
}

func cmdPrint(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, rest, err := configFromArgs(args, stderr)
	if err != nil {
		return err
	}
	return printcli.RunCLI(ctx, rest, stdout, stderr, printcli.Env{BaseURL: agentURL(cfg), Token: func() string { return agentToken(cfg) }, Printers: cfg.Printers})
}
