package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"fieldkit/internal/config"
	"fieldkit/internal/doctor"
	"fieldkit/sync/receipts"
	"fieldkit/sync/receiptscli"
	"fieldkit/sync/uplink"
)

// The receipt ledger, its uplink to the cloud, and the receipts command.
func init() {
	partBuilders = append(partBuilders, buildReceipts)
	subcommands["receipts"] = cmdReceipts
	offlineCheckBuilders = append(offlineCheckBuilders, func(ctx context.Context, cfg *config.Config) []doctor.Check {
		// Opening the ledger here is safe beside a running agent: SQLite
		// in WAL mode lets a second process read.
		svc, err := receipts.New(cfg.Receipts, receipts.Deps{Box: cfg.Box, DataDir: cfg.DataDir})
		if err != nil {
			return []doctor.Check{{Name: "receipts", Run: func(context.Context) doctor.Result {
				return doctor.Failf("check the receipts: section and the data dir", "%v", err)
			}}}
		}
		cs := svc.Checks()
		return append(cs, doctor.Check{Name: "receipts (close)", Run: func(context.Context) doctor.Result {
			if err := svc.Close(); err != nil {
				return doctor.Warnf("", "closing the ledger: %v", err)
			}
			return doctor.Pass("")
		}})
	})
}

func buildReceipts(_ context.Context, a *app) error {
	d := receipts.Deps{
		Box: a.cfg.Box, DataDir: a.cfg.DataDir, Clock: a.clock, Bus: a.bus, MQTT: a.mqtt,
		Health: a.health, Metrics: a.metrics, Log: a.log,
	}
	pp := a.cfg.Receipts.PickupPrinter
	d.LabelOutbox = pp != "" && a.printerSvc != nil
	svc, err := receipts.New(a.cfg.Receipts, d)
	if err != nil {
		return fmt.Errorf("receipts: %w", err)
	}
	if d.LabelOutbox {
		labels := newPickupLabels(a, pp, svc.Ledger())
		a.addPart("pickup-labels", false, labels.run)
		a.status["pickup_labels"] = labels.status
	}
	a.closers = append(a.closers, svc.Close)
	up, err := uplink.New(svc.Config().Uplink, svc.Ledger(), uplink.Deps{
		Clock: a.clock, Bus: a.bus, MQTT: a.mqtt, Health: a.health, Metrics: a.metrics, Log: a.log,
	})
	if err != nil {
		return fmt.Errorf("receipts uplink: %w", err)
	}
	a.addPart("receipts", false, svc.Run)
	a.addPart("receipts-uplink", false, up.Run)
	svc.Routes(a.router)
	up.Routes(a.router)
	routeZSlip(a, svc)
	a.checks = append(a.checks, svc.Checks()...)
	a.checks = append(a.checks, up.Checks()...)
	a.status["receipts"] = func() any { return up.Status() }
	return nil
}

func cmdReceipts(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, rest, err := configFromArgs(args, stderr)
	if err != nil {
		return err
	}
	if len(rest) > 0 && rest[0] == "report" && slices.Contains(rest, "--print") {
		return printReport(ctx, cfg, rest[1:], stdout, stderr)
	}
	err = receiptscli.RunCLI(ctx, rest, stdout, stderr, receiptscli.Env{Box: cfg.Box, DataDir: cfg.DataDir, Config: cfg.Receipts})
	if err == receiptscli.ErrBad {
		return errSilentFail
	}
	return err
}

// printReport asks the running agent to print the end-of-show report:
// receipts report --print PRINTER [--since 8h|RFC3339].
func printReport(ctx context.Context, cfg *config.Config, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("receipts report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	printer := fs.String("print", "", "printer to print the report on (through the running agent)")
	since := fs.String("since", "", "only receipts since this RFC 3339 time or duration back (8h)")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	body, _ := json.Marshal(map[string]string{"printer": *printer, "since": *since})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, agentURL(cfg)+"/api/receipts/report/print", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if tok := agentToken(cfg); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return fmt.Errorf("the agent at %s did not answer (is it running?): %w", agentURL(cfg), err)
	}
	defer resp.Body.Close()
	var out struct {
		ID    string `json:"id"`
		Error string `json:"error"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("printing the report: %s: %s", resp.Status, out.Error)
	}
	fmt.Fprintf(stdout, "report queued on %s as job %s\n", *printer, out.ID)
	return nil
}
