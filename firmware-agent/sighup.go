package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// onSIGHUP runs the reload hooks (scenes and other reloadable parts) on
// each SIGHUP; a failed reload keeps the old state and is logged.
func (a *app) onSIGHUP(ctx context.Context) error {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	defer signal.Stop(ch)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ch:
			a.log.Info("SIGHUP: reloading")
			for _, r := range a.reload {
				if err := r(); err != nil {
					a.log.Error("reload failed; keeping the previous set", "err", err)
				}
			}
		}
	}
}
