package sdnotify

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

func TestReadyAndWatchdog(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify.sock")
	l, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	t.Setenv("WATCHDOG_USEC", "100000")
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	n := FromEnv()
	if !n.Enabled() || WatchdogInterval() != 100*time.Millisecond {
		t.Fatalf("enabled=%v interval=%v", n.Enabled(), WatchdogInterval())
	}
	if err := n.Send("READY=1"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go n.Watchdog(ctx, WatchdogInterval(), func() bool { return true })
	buf := make([]byte, 64)
	l.SetReadDeadline(time.Now().Add(5 * time.Second))
	for _, want := range []string{"READY=1", "WATCHDOG=1"} {
		k, err := l.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		if string(buf[:k]) != want {
			t.Fatalf("got %q, want %q", buf[:k], want)
		}
	}
}

func TestNoSocketIsNoop(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	n := FromEnv()
	if n.Enabled() || n.Send("READY=1") != nil {
		t.Fatal("no-op notifier misbehaved")
	}
}
