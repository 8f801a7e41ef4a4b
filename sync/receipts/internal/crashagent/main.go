// Command crashagent serves the receipt ledger's HTTP API, and nothing
// else, so that the crash test can kill -9 a real process that appends
// receipts through the production handler.
//
//	crashagent -data DIR -listen 127.0.0.1:PORT -ready FILE
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"fieldkit/sync/receipts"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "crashagent:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("crashagent", flag.ContinueOnError)
	data := fs.String("data", "", "data directory")
	listen := fs.String("listen", "127.0.0.1:0", "address")
	ready := fs.String("ready", "", "file to write the address to once serving")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	svc, err := receipts.New(receipts.Config{}, receipts.Deps{Box: "crash", DataDir: *data, Log: log})
	if err != nil {
		return err
	}
	defer svc.Close()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: svc.Handler()}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if *ready != "" {
		if err := os.WriteFile(*ready, []byte(ln.Addr().String()), 0o600); err != nil {
			return err
		}
	}
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
