package main

import (
	"context"
	"encoding/json"
	"errors"
	"fieldkit/internal/agentapi"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"fieldkit/firmware-agent/config"
	"fieldkit/internal/doctor"
	"fieldkit/sync/receipts"
	"fieldkit/sync/receiptscli"
	"fieldkit/sync/uplink"
)

// receiptsPart is the signed receipt ledger.
type receiptsPart struct{ *receipts.Service }

func (receiptsPart) Name() string { return "receipts" }

// uplinkPart drains the ledger to the cloud; its state is the receipts
// section of /api/status.
type uplinkPart struct{ *uplink.Uplink }

func (uplinkPart) Name() string    { return "receipts-uplink" }
func (uplinkPart) Section() string { return "receipts" }
func (u uplinkPart) Status() any   { return u.Uplink.Status() }

// newReceipts builds the ledger; with pickup labels, every sale stores
// its label request in its own transaction and pickup drains them.
func newReceipts(cfg *config.Config, p plumbing, pickup *pickupLabels, who func(*http.Request) string) (receiptsPart, error) {
	d := receipts.Deps{
		Box: cfg.Box, DataDir: cfg.DataDir, Clock: p.clock, Bus: p.bus, MQTT: p.mqtt,
		Health: p.health, Metrics: p.metrics, Log: p.log,
		LabelOutbox: pickup != nil, Rehearsal: true, Who: who,
	}
	svc, err := receipts.New(cfg.Receipts, d)
	if err != nil {
		return receiptsPart{}, fmt.Errorf("receipts: %w", err)
	}
	if pickup != nil {
		pickup.sources = []*labelSource{{l: svc.Ledger()}, {l: svc.RehearsalLedger(), rehearsal: true}}
	}
	return receiptsPart{svc}, nil
}

func newUplink(rs *receipts.Service, p plumbing) (uplinkPart, error) {
	up, err := uplink.New(rs.Config().Uplink, rs.Ledger(), uplink.Deps{
		Clock: p.clock, Bus: p.bus, MQTT: p.mqtt, Health: p.health, Metrics: p.metrics, Log: p.log,
	})
	if err != nil {
		return uplinkPart{}, fmt.Errorf("receipts uplink: %w", err)
	}
	return uplinkPart{up}, nil
}

// receiptsOfflineChecks checks an existing ledger; before the first start
// there is none, and doctor must not make one (a key made here would not
// be the key the agent is set up with). Opening an existing ledger is safe
// beside a running agent: SQLite in WAL mode lets a second process read.
func receiptsOfflineChecks(ctx context.Context, cfg *config.Config) []doctor.Check {
	rc := cfg.Receipts.WithDefaults(cfg.DataDir)
	var missing []string
	for _, f := range []string{rc.KeyFile, rc.DB} {
		if _, err := os.Stat(f); errors.Is(err, fs.ErrNotExist) {
			missing = append(missing, f)
		}
	}
	if len(missing) > 0 {
		return []doctor.Check{{Name: "receipts", Run: func(context.Context) doctor.Result {
			return doctor.Pass(fmt.Sprintf("no ledger yet (%s): the agent makes it at first start", strings.Join(missing, ", ")))
		}}}
	}
	svc, err := receipts.New(cfg.Receipts, receipts.Deps{Box: cfg.Box, DataDir: cfg.DataDir})
	if err != nil {
		return []doctor.Check{{Name: "receipts", Run: func(context.Context) doctor.Result {
			return doctor.Failf("check the receipts: section and the data dir", "%v", err)
		}}}
	}
	afterChecks(ctx, func() { _ = svc.Close() })
	return svc.Checks()
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
	if err == receiptscli.ErrBad || err == receiptscli.ErrPII {
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
	var out struct {
		ID string `json:"id"`
	}
	if err := agentapi.New(agentURL(cfg), agentToken(cfg), 30*time.Second).Do(ctx, http.MethodPost, "/api/receipts/report/print", body, &out); err != nil {
		return fmt.Errorf("printing the report: %w", err)
	}
	fmt.Fprintf(stdout, "report queued on %s as job %s\n", *printer, out.ID)
	return nil
}
