package scanner

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"syscall"
	"time"

	"github.com/tarm/serial"
)

// serialPoll is how long a read waits before it looks at the context.
const serialPoll = 200 * time.Millisecond

// Serial is a scanner in serial mode: a code per line, ended by CR, LF or
// both, at the configured baud rate (8N1).
type Serial struct {
	path string
	p    *serial.Port
}

// OpenSerial opens the serial port at path.
func OpenSerial(path string, baud int) (*Serial, error) {
	p, err := serial.OpenPort(&serial.Config{Name: path, Baud: baud, ReadTimeout: serialPoll})
	if err != nil {
		return nil, fmt.Errorf("scanner %s at %d baud: %w", path, baud, err)
	}
	return &Serial{path: path, p: p}, nil
}

// Run reads codes until ctx ends or the port hangs up, calling emit with
// each.
func (s *Serial) Run(ctx context.Context, emit func(string)) error {
	lr := LineReader{}
	buf := make([]byte, 256)
	for ctx.Err() == nil {
		n, err := s.p.Read(buf)
		lr.Feed(buf[:n], emit)
		if errors.Is(err, io.EOF) {
			// VTIME ran out with nothing received, or the tty hung up (the
			// USB adapter was pulled): only the latter fails an empty write.
			if _, werr := s.p.Write(nil); werr != nil {
				return fmt.Errorf("scanner %s: hung up: %w", s.path, werr)
			}
			continue
		}
		if errors.Is(err, syscall.EIO) {
			return fmt.Errorf("scanner %s: hung up: %w", s.path, err)
		}
		if err != nil {
			return fmt.Errorf("scanner %s: %w", s.path, err)
		}
	}
	return nil
}

// Close closes the port.
func (s *Serial) Close() error { return s.p.Close() }

// LineReader splits serial input into codes at CR or LF. The zero value
// is ready.
type LineReader struct {
	buf      []byte
	overflow bool
	// Dropped counts lines thrown away for being longer than MaxCode.
	Dropped int
}

// Feed takes received bytes and calls emit with each complete, non-empty
// line (CR LF ends one line, not two).
func (l *LineReader) Feed(b []byte, emit func(string)) {
	for len(b) > 0 {
		i := bytes.IndexAny(b, "\r\n")
		if i < 0 {
			l.add(b)
			return
		}
		l.add(b[:i])
		b = b[i+1:]
		if l.overflow {
			l.Dropped++
		} else if len(l.buf) > 0 {
			emit(string(l.buf))
		}
		l.buf, l.overflow = l.buf[:0], false
	}
}

func (l *LineReader) add(b []byte) {
	if len(l.buf)+len(b) > MaxCode {
		l.overflow = true
		return
	}
	l.buf = append(l.buf, b...)
}
