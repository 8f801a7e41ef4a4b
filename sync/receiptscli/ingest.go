package receiptscli

import (
	"context"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"fieldkit/internal/secret"
	"fieldkit/sync/ingest"
	"fieldkit/sync/receipts"
)

// runIngest is `receipts ingest`: the reference cloud side, serving on
// SQLite (--db, the default) or PostgreSQL (--postgres), and `receipts
// ingest enroll`, which registers a box and prints its token.
func runIngest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "enroll" {
		return enrollBox(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "key" {
		return cloudKey(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("receipts ingest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8090", "address to serve on")
	db := fs.String("db", "ingest.db", "SQLite ingest database (ignored with --postgres)")
	pg := fs.String("postgres", "", "PostgreSQL connection URL (postgres://user@host/db?sslmode=verify-full); the password from PGPASSWORD or PGPASSFILE")
	key := fs.String("key", "", "checkpoint signing key (default <db>.key, made on first run; required with --postgres, the same file on every instance)")
	tofu := fs.Bool("trust-on-first-use", false, "accept boxes no admin enrolled, anchored to the key they send first (demo or closed network only)")
	adminFile := fs.String("admin-token-file", "", "bearer token the operators' JSON endpoints need")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *key == "" {
		if *pg != "" {
			return errors.New("receipts ingest --postgres needs --key: every instance must sign checkpoints with the same key")
		}
		*key = *db + ".key"
	}
	k, _, err := receipts.LoadOrCreateKey(*key)
	if err != nil {
		return err
	}
	var admin string
	if *adminFile != "" {
		if admin, err = secret.Read(*adminFile); err != nil {
			return err
		}
	}
	store, err := openStore(ctx, *db, *pg)
	if err != nil {
		return err
	}
	defer store.Close()
	log := slog.New(slog.NewTextHandler(stderr, nil))
	ing, err := ingest.Open(ingest.Options{Store: store, Key: k.Priv, TrustOnFirstUse: *tofu, AdminToken: admin, Log: log})
	if err != nil {
		return err
	}
	defer ing.Close()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: ing.Handler(), ReadHeaderTimeout: 10 * time.Second}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	mode := "enrolled boxes only"
	if *tofu {
		mode = "trusting unenrolled boxes on first use"
	}
	fmt.Fprintf(stderr, "ingest listening on %s (%s, %s; checkpoint key %s)\n%s", ln.Addr(), store.Backend(), mode, k.ID, receipts.PublicPEM(k.Pub))
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	<-stopped
	return nil
}

func openStore(ctx context.Context, db, pg string) (ingest.Store, error) {
	if pg != "" {
		return ingest.OpenPostgres(ctx, pg)
	}
	return ingest.OpenSQLite(db)
}

func enrollBox(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("receipts ingest enroll", flag.ContinueOnError)
	fs.SetOutput(stderr)
	box := fs.String("box", "", "the box's id (box_id in its config)")
	venue := fs.String("venue", "", "where the box stands, for the fleet report")
	pubFile := fs.String("pubkey", "", "PEM printed by `receipts pubkey` on the box (default: pin the key the box sends first)")
	db := fs.String("db", "ingest.db", "SQLite ingest database (ignored with --postgres)")
	pg := fs.String("postgres", "", "PostgreSQL connection URL")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *box == "" {
		return errors.New("receipts ingest enroll: --box is required")
	}
	var pub ed25519.PublicKey
	if *pubFile != "" {
		var err error
		if pub, err = readPub(*pubFile); err != nil {
			return err
		}
	}
	store, err := openStore(ctx, *db, *pg)
	if err != nil {
		return err
	}
	defer store.Close()
	// Enrolling needs no checkpoint key; a throwaway one satisfies Open.
	_, throwaway, _ := ed25519.GenerateKey(nil)
	ing, err := ingest.Open(ingest.Options{Store: store, Key: throwaway})
	if err != nil {
		return err
	}
	token, err := ing.Enroll(ctx, *box, *venue, pub)
	if err != nil {
		return err
	}
	how := "its chain must start with key " + receipts.KeyID(pub)
	if pub == nil {
		how = "the key it sends with its first batch will be pinned"
	}
	fmt.Fprintf(stderr, "enrolled box %s (%s); put this token in the box's uplink token_file:\n", *box, how)
	_, err = fmt.Fprintln(stdout, token)
	return err
}

// cloudKey is `receipts ingest key --key FILE`: makes the checkpoint key
// if it does not exist and prints its public half, the PEM the boxes pin
// as cloud_key_file.
func cloudKey(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("receipts ingest key", flag.ContinueOnError)
	fs.SetOutput(stderr)
	key := fs.String("key", "", "checkpoint key file (created 0600 if missing)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *key == "" {
		return errors.New("receipts ingest key: --key is required")
	}
	k, created, err := receipts.LoadOrCreateKey(*key)
	if err != nil {
		return err
	}
	if created {
		fmt.Fprintf(stderr, "created checkpoint key %s in %s\n", k.ID, *key)
	}
	_, err = stdout.Write(receipts.PublicPEM(k.Pub))
	return err
}
