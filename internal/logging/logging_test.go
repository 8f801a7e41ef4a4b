package logging

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// journalFile is a file the test pretends systemd connected as the
// journal stream: JOURNAL_STREAM names its device and inode.
func journalFile(t *testing.T) *os.File {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	t.Setenv("JOURNAL_STREAM", fmt.Sprintf("%d:%d", uint64(st.Dev), uint64(st.Ino)))
	return f
}

func lines(t *testing.T, f *os.File) []string {
	t.Helper()
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

func TestJournalPriorities(t *testing.T) {
	for _, json := range []bool{false, true} {
		t.Run(fmt.Sprintf("json=%v", json), func(t *testing.T) {
			f := journalFile(t)
			log := New(f, Options{Level: slog.LevelDebug, JSON: json}).With("part", "printer")
			log.Error("printer gone", "err", "EOF\nsecond line")
			log.Warn("paper low")
			log.Info("job done", "id", 7)
			log.Debug("status polled")
			log.Log(context.Background(), slog.LevelWarn+2, "between warn and error")
			got := lines(t, f)
			want := []string{"<3>", "<4>", "<6>", "<7>", "<4>"}
			if len(got) != len(want) {
				t.Fatalf("%d lines, want %d (a message with a line break must stay one line): %q", len(got), len(want), got)
			}
			for i, l := range got {
				if !strings.HasPrefix(l, want[i]) || strings.HasPrefix(l[3:], "<") {
					t.Errorf("line %d %q: want the prefix %s", i, l, want[i])
				}
				if strings.Contains(l, "time=") || strings.Contains(l, `"time"`) {
					t.Errorf("line %d %q carries a time; the journal stamps it", i, l)
				}
				if !strings.Contains(l, "printer") {
					t.Errorf("line %d %q lost the logger's attributes", i, l)
				}
			}
		})
	}
}

// Level filtering still applies, and lines written from many goroutines
// never share a prefix.
func TestJournalConcurrent(t *testing.T) {
	f := journalFile(t)
	log := New(f, Options{Level: slog.LevelInfo})
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				log.Warn("w", "g", g)
				log.Info("i", "g", g)
				log.Debug("d")
			}
		}()
	}
	wg.Wait()
	got := lines(t, f)
	if len(got) != 8*50*2 {
		t.Fatalf("%d lines, want %d", len(got), 8*50*2)
	}
	for _, l := range got {
		ok := (strings.HasPrefix(l, "<4>") && strings.Contains(l, "msg=w ")) || (strings.HasPrefix(l, "<6>") && strings.Contains(l, "msg=i "))
		if !ok {
			t.Fatalf("line %q: wrong prefix for its level", l)
		}
	}
}

// With JOURNAL_STREAM naming another file (stderr redirected by hand) or
// absent, lines are plain slog with their time.
func TestNotUnderJournal(t *testing.T) {
	journalFile(t)
	other, err := os.Create(filepath.Join(t.TempDir(), "redirected"))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	New(other, Options{}).Error("boom")
	if l := lines(t, other)[0]; !strings.HasPrefix(l, "time=") || !strings.Contains(l, "level=ERROR") {
		t.Fatalf("redirected stderr got %q", l)
	}
	for _, env := range []string{"", "garbage", "1:", ":2"} {
		t.Setenv("JOURNAL_STREAM", env)
		if UnderJournal(other) {
			t.Errorf("JOURNAL_STREAM=%q taken as ours", env)
		}
	}
}

func TestPriority(t *testing.T) {
	for l, want := range map[slog.Level]int{slog.LevelError: 3, slog.LevelError + 4: 3, slog.LevelWarn: 4, slog.LevelInfo: 6, slog.LevelInfo + 1: 6, slog.LevelDebug: 7, slog.LevelDebug - 4: 7} {
		if got := Priority(l); got != want {
			t.Errorf("Priority(%v) = %d, want %d", l, got, want)
		}
	}
}

func FuzzParseStream(f *testing.F) {
	for _, s := range []string{"8:12345", "0:0", "18446744073709551615:1", ":", "a:b", "1:2:3", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		dev, ino, ok := parseStream(s)
		if !ok {
			return
		}
		// Accepted: two runs of decimal digits around one colon, which
		// read back to the same numbers.
		d, i, _ := strings.Cut(s, ":")
		if strings.Trim(d, "0123456789") != "" || strings.Trim(i, "0123456789") != "" {
			t.Fatalf("%q accepted", s)
		}
		if fmt.Sprint(dev) != strings.TrimLeft(d, "0") && dev != 0 || fmt.Sprint(ino) != strings.TrimLeft(i, "0") && ino != 0 {
			t.Fatalf("%q parsed as %d:%d", s, dev, ino)
		}
	})
}
