package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/tarm/serial"
)

// serialPoll is how long one serial read waits before returning empty;
// tarm/serial rounds read timeouts to tenths of a second (termios VTIME),
// so 100 ms is the finest it can do. It bounds how long a closed port
// lingers, not how fast replies arrive: a read returns as soon as a byte
// is in.
const serialPoll = 100 * time.Millisecond

// bauds tarm/serial accepts on Linux.
var bauds = []int{50, 75, 110, 134, 150, 200, 300, 600, 1200, 1800, 2400, 4800, 9600, 19200,
	38400, 57600, 115200, 230400, 460800, 500000, 576000, 921600, 1000000, 1152000, 1500000,
	2000000, 2500000, 3000000, 3500000, 4000000}

// ValidBaud reports whether the serial transport can set rate b.
func ValidBaud(b int) bool { return validBaud(b) }

func validBaud(b int) bool {
	for _, v := range bauds {
		if v == b {
			return true
		}
	}
	return false
}

// resolve follows symlinks now, so that a udev link re-pointed at a new
// device node is honoured at every reopen.
func resolve(path string) (string, error) {
	dev, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", err
	}
	return dev, nil
}

func (p *Port) openSerial(context.Context) (link, string, error) {
	dev, err := resolve(p.o.Path)
	if err != nil {
		return nil, "", err
	}
	sp, err := serial.OpenPort(&serial.Config{Name: dev, Baud: p.o.Baud, ReadTimeout: serialPoll})
	if err != nil {
		return nil, "", fmt.Errorf("%s at %d baud: %w", dev, p.o.Baud, err)
	}
	return serialLink{sp}, dev, nil
}

type serialLink struct{ p *serial.Port }

func (s serialLink) read(b []byte) (int, error) {
	n, err := s.p.Read(b)
	if errors.Is(err, io.EOF) {
		// Either termios VTIME ran out with nothing received, or the tty
		// was hung up (USB adapter pulled, pty master closed), which also
		// reads as end-of-file. A hung-up tty fails every write, even an
		// empty one, while a live one accepts it: probe to tell them apart.
		if _, werr := s.p.Write(nil); werr != nil {
			return n, fmt.Errorf("device hung up: %w", werr)
		}
		return n, nil
	}
	return n, err
}

// write cannot be interrupted: tarm/serial puts the descriptor in
// blocking mode. A serial line drains at its baud rate, so a write ends
// on its own; an unplugged adapter ends it with an error.
func (s serialLink) write(_ context.Context, b []byte, _ time.Duration) (int, error) {
	return s.p.Write(b)
}

func (s serialLink) close() error { return s.p.Close() }

// openFile opens a USB printer-class node (/dev/usb/lp0): plain reads and
// writes, replies coming back on the same descriptor.
func (p *Port) openFile(context.Context) (link, string, error) {
	dev, err := resolve(p.o.Path)
	if err != nil {
		return nil, "", err
	}
	f, err := os.OpenFile(dev, os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, "", err
	}
	return fileLink{f}, dev, nil
}

type fileLink struct{ f *os.File }

func (l fileLink) read(b []byte) (int, error) {
	n, err := l.f.Read(b)
	if errors.Is(err, io.EOF) {
		// usblp may answer 0 bytes when the printer has nothing to say,
		// and a hung-up tty reads as end-of-file too; only the latter
		// fails an empty write.
		if _, werr := l.f.Write(nil); werr != nil {
			return n, fmt.Errorf("device hung up: %w", werr)
		}
		// Pause so that an idle printer does not spin this reader.
		time.Sleep(50 * time.Millisecond)
		return n, nil
	}
	return n, err
}

func (l fileLink) write(ctx context.Context, b []byte, limit time.Duration) (int, error) {
	return deadlineWrite(ctx, l.f, b, limit)
}

func (l fileLink) close() error { return l.f.Close() }

func (p *Port) openTCP(ctx context.Context) (link, string, error) {
	d := net.Dialer{Timeout: p.o.DialTimeout}
	c, err := d.DialContext(ctx, "tcp", p.o.Path)
	if err != nil {
		return nil, "", err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		// A printer that vanishes without a FIN is noticed within a minute
		// even if nothing is being printed.
		_ = tc.SetKeepAlive(true)
		_ = tc.SetKeepAlivePeriod(15 * time.Second)
	}
	return tcpLink{c}, c.RemoteAddr().String(), nil
}

type tcpLink struct{ c net.Conn }

// read treats EOF as the printer closing the connection: the link is gone.
func (l tcpLink) read(b []byte) (int, error) { return l.c.Read(b) }

func (l tcpLink) write(ctx context.Context, b []byte, limit time.Duration) (int, error) {
	return deadlineWrite(ctx, l.c, b, limit)
}

func (l tcpLink) close() error { return l.c.Close() }

type deadlineWriter interface {
	io.Writer
	SetWriteDeadline(time.Time) error
}

// deadlineWrite bounds a write by ctx and limit where the descriptor
// supports deadlines (sockets, pollable character devices).
func deadlineWrite(ctx context.Context, w deadlineWriter, b []byte, limit time.Duration) (int, error) {
	dl := time.Now().Add(limit)
	if d, ok := ctx.Deadline(); ok && d.Before(dl) {
		dl = d
	}
	if err := w.SetWriteDeadline(dl); err == nil {
		stop := context.AfterFunc(ctx, func() { _ = w.SetWriteDeadline(time.Unix(1, 0)) })
		defer stop()
		defer w.SetWriteDeadline(time.Time{})
	}
	return w.Write(b)
}
