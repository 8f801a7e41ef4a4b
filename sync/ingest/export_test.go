package ingest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"

	"github.com/jackc/pgx/v5"

	"fieldkit/internal/pgtest"
	"fieldkit/sync/receipts"
)

// For the external tests (which may import the uplink, itself an
// importer of this package).

// ChildEnv is childEnv.
const ChildEnv = childEnv

// PGCluster is the package's throwaway PostgreSQL.
func PGCluster() *pgtest.Cluster { return cluster }

// QueryRow runs a query on a PostgreSQL store.
func QueryRow(ctx context.Context, st Store, q string, args ...any) pgx.Row {
	return st.(*pgStore).pool.QueryRow(ctx, q, args...)
}

// childEnv makes the test binary an ingest instance (see runChild): the
// fleet test kills one with SIGKILL mid-run, which only a process of its
// own can stand for.
const childEnv = "FIELDKIT_INGEST_CHILD"

func runChild() int {
	ctx := context.Background()
	st, err := OpenPostgres(ctx, os.Getenv("FIELDKIT_INGEST_PG"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	k, err := receipts.LoadKey(os.Getenv("FIELDKIT_INGEST_KEY"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	s, err := Open(Options{Store: st, Key: k.Priv, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ln, err := net.Listen("tcp", os.Getenv("FIELDKIT_INGEST_LISTEN"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("ready")
	// Runs until killed, as the test means it to.
	if err := http.Serve(ln, s.Handler()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}
