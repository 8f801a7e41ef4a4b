// Package logging builds the agent's slog logger. Under systemd, when
// standard error is the journal's stream, each line starts with an
// sd-daemon(3) priority prefix ("<3>" for errors) and carries no time of
// its own (the journal stamps every line), so that `journalctl -p err`
// finds the errors; elsewhere lines are plain slog text or JSON.
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Options choose the format and the least level written.
type Options struct {
	Level  slog.Level
	JSON   bool
	Source bool
}

// New returns a logger writing to w, with journal priorities when w is
// the stream named by $JOURNAL_STREAM.
func New(w io.Writer, o Options) *slog.Logger { return slog.New(NewHandler(w, o)) }

// NewHandler is New's handler, for wrapping in another.
func NewHandler(w io.Writer, o Options) slog.Handler {
	journal := UnderJournal(w)
	ho := &slog.HandlerOptions{Level: o.Level, AddSource: o.Source}
	if journal {
		ho.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{} // the journal has the time
			}
			return a
		}
	}
	out := &prefixWriter{w: w}
	var h slog.Handler
	if o.JSON {
		h = slog.NewJSONHandler(out, ho)
	} else {
		h = slog.NewTextHandler(out, ho)
	}
	if !journal {
		return h
	}
	return &journalHandler{inner: h, out: out}
}

// UnderJournal reports whether w is the journal stream that systemd gave
// the service: $JOURNAL_STREAM holds "<device>:<inode>" of that stream,
// and it is only ours when w is that very file (a redirect replaces it).
func UnderJournal(w io.Writer) bool {
	env := os.Getenv("JOURNAL_STREAM")
	if env == "" {
		return false
	}
	dev, ino, ok := parseStream(env)
	if !ok {
		return false
	}
	f, ok := w.(interface{ Stat() (os.FileInfo, error) })
	if !ok {
		return false
	}
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return false
	}
	return uint64(st.Dev) == dev && uint64(st.Ino) == ino //nolint:unconvert // Dev's type differs by platform
}

// parseStream reads "<device>:<inode>", both decimal.
func parseStream(s string) (dev, ino uint64, ok bool) {
	d, i, found := strings.Cut(s, ":")
	if !found {
		return 0, 0, false
	}
	dev, err1 := strconv.ParseUint(d, 10, 64)
	ino, err2 := strconv.ParseUint(i, 10, 64)
	return dev, ino, err1 == nil && err2 == nil
}

// Priority is the syslog priority (sd-daemon's "<N>" prefix) of a level:
// error 3, warning 4, info 6, debug 7; levels between round down to the
// more severe.
func Priority(l slog.Level) int {
	switch {
	case l >= slog.LevelError:
		return 3
	case l >= slog.LevelWarn:
		return 4
	case l >= slog.LevelInfo:
		return 6
	}
	return 7
}

// journalHandler puts the record's priority in front of the line the
// inner handler writes. The shared writer's lock is held across the inner
// Handle, whose single Write per record is then prefixed.
type journalHandler struct {
	inner slog.Handler
	out   *prefixWriter
}

func (h *journalHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

func (h *journalHandler) Handle(ctx context.Context, r slog.Record) error {
	h.out.mu.Lock()
	defer h.out.mu.Unlock()
	h.out.prefix = Priority(r.Level)
	defer func() { h.out.prefix = -1 }()
	return h.inner.Handle(ctx, r)
}

func (h *journalHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &journalHandler{inner: h.inner.WithAttrs(as), out: h.out}
}

func (h *journalHandler) WithGroup(name string) slog.Handler {
	return &journalHandler{inner: h.inner.WithGroup(name), out: h.out}
}

// prefixWriter writes "<N>" before a record's line while a journalHandler
// holds mu and has set prefix; otherwise it passes bytes through.
type prefixWriter struct {
	mu     sync.Mutex
	w      io.Writer
	prefix int
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	if p.prefix <= 0 {
		return p.w.Write(b)
	}
	// One write per line, so that lines from several goroutines never mix.
	line := make([]byte, 0, len(b)+3)
	line = fmt.Appendf(line, "<%d>", p.prefix)
	line = append(line, b...)
	if _, err := p.w.Write(line); err != nil {
		return 0, err
	}
	return len(b), nil
}
