package receipts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
)

// The budget in force is the disk's free room when that is smaller than
// the configured budget: sales are refused (507, "disk") before SQLite
// runs out of room, and accepted again once space is freed.
func TestBudgetTakesTheFreeSpace(t *testing.T) {
	var free atomic.Int64
	free.Store(diskReserve + 64<<10)
	var mu sync.Mutex
	var msgs []string
	l := openTest(t, func(o *Options) {
		o.DiskBudget = 512 << 20
		o.FreeSpace = func() (int64, error) { return free.Load(), nil }
		o.OnAlarm = func(level int, msg string) { mu.Lock(); msgs = append(msgs, fmt.Sprint(level, " ", msg)); mu.Unlock() }
	})
	var err error
	i := 0
	for err == nil && i < 5000 {
		i++
		// The disk fills as the ledger grows.
		free.Add(-2 << 10)
		_, _, err = l.Append(context.Background(), order(i))
	}
	if !errors.Is(err, ErrNoSpace) || StatusOf(err) != 507 || !strings.Contains(err.Error(), "disk") {
		t.Fatalf("after %d appends: %v (status %d)", i, err, StatusOf(err))
	}
	if used, budget := l.Usage(); budget >= 512<<20 || used < budget {
		t.Fatalf("usage %d of budget %d: the free space was not taken", used, budget)
	}
	free.Store(1 << 30)
	l.RefreshUsage(context.Background())
	if _, _, err := l.Append(context.Background(), order(i)); err != nil {
		t.Fatalf("after space was freed: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(msgs) < 2 || !strings.HasPrefix(msgs[len(msgs)-2], "100 the disk holding the receipt ledger is full") || !strings.HasPrefix(msgs[len(msgs)-1], "0 ") {
		t.Fatalf("alarms: %q", msgs)
	}
}

type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// On a really full disk (a small tmpfs) a commit that SQLite refuses is
// answered 507, and the rollback SQLite did itself is not logged as a
// failure.
func TestCommitOnAFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipped: the full-disk test mounts a small tmpfs, which needs root (run the suite as root, as CI does)")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("skipped: cannot mount a tmpfs here (%v: %s)", err, bytes.TrimSpace(out))
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	logs := &logBuf{}
	tl := &testLedger{dir: dir, synced: true}
	l, err := Open(Options{
		Path: filepath.Join(dir, "r.db"), KeyFile: filepath.Join(dir, "r.key"), Box: "box1", BootID: "boot-1",
		Sync: SyncFunc(func() bool { return true }),
		// Claim room, so that the commit itself meets the full disk.
		FreeSpace: func() (int64, error) { return 1 << 30, nil },
		Log:       slog.New(slog.NewTextHandler(logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	tl.Ledger = l
	if _, _, err := l.Append(context.Background(), order(1)); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	f.Close()
	var aerr error
	for i := 2; i < 20000 && aerr == nil; i++ {
		o := order(i)
		o.Order = strings.Repeat("y", 150)
		_, _, aerr = l.Append(context.Background(), o)
	}
	if !errors.Is(aerr, ErrNoSpace) || StatusOf(aerr) != 507 {
		t.Fatalf("append on a full disk: %v (status %d)", aerr, StatusOf(aerr))
	}
	if strings.Contains(logs.String(), "rollback") {
		t.Fatalf("rollback noise in the log:\n%s", logs.String())
	}
	os.Remove(filepath.Join(dir, "filler"))
	if _, _, err := l.Append(context.Background(), order(5000)); err != nil {
		t.Fatalf("after space was freed: %v", err)
	}
}
