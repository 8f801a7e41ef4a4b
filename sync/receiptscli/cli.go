// Package receiptscli is the `firmware-agent receipts ...` command line:
// verify, export, pubkey, report, rotate-key and the reference ingest.
package receiptscli

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"fieldkit/sync/receipts"
)

// Env is what the agent's config says about receipts.
type Env struct {
	Box     string
	DataDir string
	Config  receipts.Config
}

// ErrPII is returned when the audit found a discreet buyer's data (exit
// status 1, the findings already printed).
var ErrPII = errors.New("the audit found a discreet buyer's data")

// audit checks every stored sale and the given log files for data that
// identifies the buyer of a discreet sale. Findings go to stdout, one a
// line; the summary to stderr, so that a correct box prints nothing.
func audit(ctx context.Context, stdout, stderr io.Writer, db string, logs []string) error {
	r, err := receipts.OpenReader(db)
	if err != nil {
		return err
	}
	defer r.Close()
	a := receipts.NewAudit(r.Box())
	if err := r.Range(ctx, 0, 0, func(s receipts.Signed) error { a.Record(s); return nil }); err != nil {
		return err
	}
	for _, name := range logs {
		f, err := os.Open(name)
		if err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		err = a.Log(name, f)
		f.Close()
		if err != nil {
			return err
		}
	}
	for _, f := range a.Findings {
		fmt.Fprintln(stdout, f)
	}
	fmt.Fprintf(stderr, "audit: %d sales (%d discreet) in %s and %d log lines in %d file(s): %d finding(s)\n",
		a.Sales, a.Discreet, db, a.Lines, len(logs), len(a.Findings))
	if len(a.Findings) > 0 {
		return ErrPII
	}
	return nil
}

// ErrBad is returned when verification finds a bad record (exit status 1
// with the reason already printed).
var ErrBad = errors.New("the ledger does not verify")

const usage = `usage: receipts COMMAND [flags]
  verify [--db FILE | --file export.ndjson] [--pubkey PEM] [--checkpoint FILE] [--cloud-key PEM]
  export [--db FILE] [--after N] [--out FILE]
  checkpoint [--db FILE] [--key FILE] [--out FILE]
  pubkey [--key FILE]
  report [--db FILE] [--pubkey PEM] [--since 8h|RFC3339] [--json]
  audit [--db FILE] [LOGFILE ...]  (a discreet buyer's data in the ledger or the logs; prints nothing when none)
  rotate-key                      (with the agent stopped, or use POST /api/receipts/rotate-key)
  ingest [--listen ADDR] [--db FILE | --postgres URL] [--key FILE] [--trust-on-first-use] [--admin-token-file FILE]
  ingest enroll --box ID [--venue NAME] [--pubkey PEM] [--db FILE | --postgres URL]
  ingest key --key FILE           (make the checkpoint key; print its public PEM for the boxes)
`

// RunCLI runs one receipts subcommand.
func RunCLI(ctx context.Context, args []string, stdout, stderr io.Writer, env Env) error {
	cfg := env.Config.WithDefaults(env.DataDir)
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("receipts: a command is needed")
	}
	fs := flag.NewFlagSet("receipts "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	switch args[0] {
	case "verify":
		db := fs.String("db", cfg.DB, "ledger database")
		file := fs.String("file", "", "NDJSON export to verify instead of the database")
		pub := fs.String("pubkey", "", "PEM public key of the box's first key, the one trust root (default: the ledger's own record, which proves integrity only)")
		cpFile := fs.String("checkpoint", "", "signed checkpoints (as `receipts checkpoint` writes them) to catch a truncated tail")
		cloudKey := fs.String("cloud-key", "", "PEM key the checkpoint must be signed with")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		return verify(ctx, stdout, *db, *file, *pub, *cpFile, *cloudKey, cfg.KeyFile)
	case "export":
		db := fs.String("db", cfg.DB, "ledger database")
		after := fs.Uint64("after", 0, "export records after this seq")
		out := fs.String("out", "", "file to write (default stdout)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		r, err := receipts.OpenReader(*db)
		if err != nil {
			return err
		}
		defer r.Close()
		w := stdout
		if *out != "" {
			f, err := os.OpenFile(*out, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
			if err != nil {
				return err
			}
			defer f.Close()
			w = f
		}
		n, err := r.Export(ctx, w, *after, 0)
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "exported %d records\n", n)
		return nil
	case "checkpoint":
		db := fs.String("db", cfg.DB, "ledger database")
		key := fs.String("key", cfg.KeyFile, "signing key file")
		out := fs.String("out", "", "file to write (default stdout)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		return writeCheckpoints(ctx, stdout, stderr, *db, *key, *out)
	case "pubkey":
		key := fs.String("key", cfg.KeyFile, "signing key file")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		k, err := receipts.LoadKey(*key)
		if err != nil {
			return err
		}
		_, err = stdout.Write(receipts.PublicPEM(k.Pub))
		return err
	case "audit":
		db := fs.String("db", cfg.DB, "ledger database")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		return audit(ctx, stdout, stderr, *db, fs.Args())
	case "report":
		db := fs.String("db", cfg.DB, "ledger database")
		since := fs.String("since", "", "only sales since (RFC 3339 or a duration back from now)")
		asJSON := fs.Bool("json", false, "print JSON")
		pub := fs.String("pubkey", "", "PEM public key of the box's first key, the trust root (default: the ledger's own record)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		var o receipts.VerifyOptions
		if *pub != "" {
			k, err := readPub(*pub)
			if err != nil {
				return err
			}
			o.First = k
		}
		var t time.Time
		if *since != "" {
			var err error
			if t, err = receipts.ParseSince(*since, time.Now()); err != nil {
				return err
			}
		}
		r, err := receipts.OpenReader(*db)
		if err != nil {
			return err
		}
		defer r.Close()
		if d := r.Domain(); d.Name != receipts.Real.Name {
			return fmt.Errorf("%s is a %s ledger: its sales are not revenue and make no report; firmware-agent rehearse reports a rehearsal", *db, d.Name)
		}
		z, err := r.Report(ctx, t, o)
		if err != nil {
			return err
		}
		if *asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(z)
		}
		z.WriteText(stdout)
		return nil
	case "rotate-key":
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		l, err := receipts.Open(receipts.Options{Path: cfg.DB, KeyFile: cfg.KeyFile, Box: env.Box, Currency: cfg.Currency})
		if err != nil {
			return err
		}
		defer l.Close()
		s, err := l.Rotate(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "rotated: record %d announces key %s\n", s.Seq, l.PublicKey().ID)
		_, err = stdout.Write(receipts.PublicPEM(l.PublicKey().Pub))
		return err
	case "ingest":
		return runIngest(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("receipts: unknown command %q", args[0])
}

func readPub(path string) (ed25519.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	k, err := receipts.ParsePublicPEM(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

func verify(ctx context.Context, w io.Writer, db, file, pubFile, cpFile, cloudKeyFile, keyFile string) error {
	var first, cloud ed25519.PublicKey
	var err error
	if pubFile != "" {
		if first, err = readPub(pubFile); err != nil {
			return err
		}
	}
	if cloudKeyFile != "" {
		if cloud, err = readPub(cloudKeyFile); err != nil {
			return err
		}
	}
	var cps []*receipts.Checkpoint
	if cpFile != "" {
		f, err := os.Open(cpFile)
		if err != nil {
			return err
		}
		cps, err = receipts.ReadCheckpoints(f, cloud)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", cpFile, err)
		}
	}
	var rep *receipts.Report
	if file != "" {
		if first == nil {
			return errors.New("verify --file needs --pubkey: the PEM printed by `receipts pubkey` on the box")
		}
		f, err := os.Open(file)
		if err != nil {
			return err
		}
		defer f.Close()
		if rep, err = receipts.VerifyExport(f, first, cps...); err != nil {
			return err
		}
	} else {
		r, err := receipts.OpenReader(db)
		if err != nil {
			return err
		}
		defer r.Close()
		if d := r.Domain(); d.Name != receipts.Real.Name {
			// This command verifies receipts; a rehearsal ledger has none.
			fmt.Fprintf(w, "FAIL %s is a %s ledger, signed in %s: its records are not receipts\n", db, d.Name, d.Sign)
			return fmt.Errorf("%w: %s is a %s ledger", ErrBad, db, d.Name)
		}
		o := receipts.VerifyOptions{First: first, Checkpoints: cps}
		if k, err := receipts.LoadKey(keyFile); err == nil {
			o.Current = k.Pub
		}
		if rep, err = r.Verify(ctx, o); err != nil {
			return err
		}
	}
	for _, wn := range rep.Warnings {
		fmt.Fprintln(w, "warning:", wn)
	}
	if !rep.OK() {
		fmt.Fprintf(w, "FAIL %s (after %d good records)\n", rep.Problem, rep.Count)
		return fmt.Errorf("%w: %s", ErrBad, rep.Problem)
	}
	fmt.Fprintf(w, "ok: box %s, %d records, seq %d-%d, turnover %d, head %s\n", rep.Box, rep.Count, rep.First, rep.Last, rep.Turnover, rep.Head)
	if first == nil {
		fmt.Fprintln(w, "note: no --pubkey given, so the chain was checked from the first key the ledger recorded itself: intact, but not proven to be this box's; pass the PEM from commissioning to prove it")
	}
	return nil
}

// writeCheckpoints writes the box's checkpoint of its head, signed with
// its key, and then the newest checkpoint the cloud signed, if any: one
// JSON object per line, the file `verify --checkpoint` reads. Kept off
// the box, it shows a later truncation of the tail even on a box that
// never synced.
func writeCheckpoints(ctx context.Context, stdout, stderr io.Writer, db, keyFile, out string) error {
	k, err := receipts.LoadKey(keyFile)
	if err != nil {
		return err
	}
	r, err := receipts.OpenReader(db)
	if err != nil {
		return err
	}
	defer r.Close()
	box, err := r.BoxCheckpoint(ctx, k, time.Now())
	if err != nil {
		return err
	}
	lines := []receipts.SignedCheckpoint{box}
	cloud, err := r.LatestCheckpoint(ctx)
	if err != nil {
		return err
	}
	if cloud != nil {
		lines = append(lines, *cloud)
	}
	var buf bytes.Buffer
	for _, sc := range lines {
		b, err := json.Marshal(sc)
		if err != nil {
			return err
		}
		buf.Write(append(b, '\n'))
	}
	if out == "" {
		_, err = stdout.Write(buf.Bytes())
		return err
	}
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		return err
	}
	cp, _ := box.Open(nil)
	fmt.Fprintf(stderr, "wrote %d checkpoint(s) to %s: the box's through seq %d", len(lines), out, cp.AckedThrough)
	if cloud != nil {
		ccp, _ := cloud.Open(nil)
		fmt.Fprintf(stderr, ", the cloud's through seq %d", ccp.AckedThrough)
	}
	fmt.Fprintln(stderr)
	return nil
}
