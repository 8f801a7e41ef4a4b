// Command firmware-agent is the fieldkit agent: it runs the cues, scenes,
// battery watch, label printers and receipt ledger of one box, and offers
// the pre-show check and tools as subcommands.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(cli(ctx, os.Args[1:], os.Stdout, os.Stderr))
}
