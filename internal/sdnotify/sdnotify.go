// Package sdnotify speaks systemd's notify protocol (sd_notify): READY=1
// once the agent serves, and WATCHDOG=1 pings at half the watchdog
// interval, so that systemd restarts an agent that hangs rather than one
// that merely crashed.
package sdnotify

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"
)

// Notifier sends state strings to systemd; the zero value (no socket) is a
// no-op, so callers never check whether they run under systemd.
type Notifier struct {
	addr *net.UnixAddr
}

// FromEnv returns a notifier for $NOTIFY_SOCKET (no-op when unset).
func FromEnv() *Notifier {
	s := os.Getenv("NOTIFY_SOCKET")
	if s == "" {
		return &Notifier{}
	}
	if s[0] == '@' { // abstract socket
		s = "\x00" + s[1:]
	}
	return &Notifier{addr: &net.UnixAddr{Name: s, Net: "unixgram"}}
}

// Enabled reports whether a socket is configured.
func (n *Notifier) Enabled() bool { return n.addr != nil }

// Send sends one notification such as "READY=1".
func (n *Notifier) Send(state string) error {
	if n.addr == nil {
		return nil
	}
	c, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	return nil
}

// WatchdogInterval is systemd's WatchdogSec for this process (0: none).
func WatchdogInterval() time.Duration {
	us, err := strconv.ParseInt(os.Getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || us <= 0 {
		return 0
	}
	if pid := os.Getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return 0
	}
	return time.Duration(us) * time.Microsecond
}

// Watchdog pings every interval/2 while healthy() is true, until ctx ends.
// A stuck agent stops pinging and systemd restarts it.
func (n *Notifier) Watchdog(ctx context.Context, interval time.Duration, healthy func() bool) error {
	if n.addr == nil || interval <= 0 {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(interval / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if healthy() {
				_ = n.Send("WATCHDOG=1")
			}
		}
	}
}
