package transport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"fieldkit/internal/deps"
)

// Transport is what a printer worker needs from a connection. Port
// implements it for real devices; an in-process fake printer may too.
type Transport interface {
	// Write sends p and reports how many bytes the device (or the
	// kernel on its way there) accepted. n > 0 with an error means part
	// of a job may have reached the printer.
	Write(ctx context.Context, p []byte) (n int, err error)
	// Query clears pending input, writes req and returns the first
	// complete reply as framed by f, waiting at most timeout.
	Query(ctx context.Context, req []byte, f Framer, timeout time.Duration) ([]byte, error)
	// Close releases the device; the Transport cannot be used after.
	Close() error
}

// Framer reports the length of the complete reply at the start of b, or 0
// while more bytes are needed. Garbage is the parser's business: a framer
// only finds where a reply ends.
type Framer func(b []byte) int

// Fixed frames replies of exactly n bytes (ESC/POS DLE EOT answers one).
func Fixed(n int) Framer {
	return func(b []byte) int {
		if len(b) >= n {
			return n
		}
		return 0
	}
}

// Errors, for errors.Is.
var (
	// ErrUnplugged: the device is absent, or the link broke during I/O.
	ErrUnplugged = errors.New("printer unplugged or unreachable")
	// ErrSilent: the printer sent nothing before the timeout.
	ErrSilent = errors.New("printer did not answer")
	// ErrIncomplete: bytes came back but never formed a whole reply.
	ErrIncomplete = errors.New("printer sent an incomplete or garbled reply")
	// ErrClosed: the Port was closed.
	ErrClosed = errors.New("transport closed")
	// ErrBadOpts: Opts do not describe a usable transport.
	ErrBadOpts = errors.New("bad transport options")
)

// Kind names a transport.
type Kind string

// Kinds.
const (
	Serial Kind = "serial"
	USB    Kind = "usb"
	TCP    Kind = "tcp"
)

// Opts configure a Port.
type Opts struct {
	Kind Kind
	// Path is the device (serial, usb) or host:port (tcp). A device path
	// may be a symlink; it is resolved again at every (re)open.
	Path string
	// Baud is the serial line speed.
	Baud int
	// DialTimeout bounds opening a TCP connection.
	DialTimeout time.Duration
	// WriteTimeout bounds one write when ctx has no earlier deadline
	// (TCP and USB; a serial write drains at the line speed).
	WriteTimeout time.Duration
	Log          *slog.Logger
}

// DefaultOpts are the values used for zero fields.
var DefaultOpts = Opts{
	Kind:         Serial,
	Baud:         9600,
	DialTimeout:  2 * time.Second,
	WriteTimeout: 10 * time.Second,
}

// maxPending caps unread input: status replies are a few bytes, and a
// printer chattering without being asked must not grow memory.
const maxPending = 4096

// Port is a Transport to one configured device, reopened on demand.
type Port struct {
	o    Opts
	open func(ctx context.Context) (link, string, error)
	log  *slog.Logger

	mu     sync.Mutex // serialises Write, Query and reopen
	c      *conn
	closed bool

	stMu sync.Mutex
	dev  string // resolved device of the current or last link
	cur  *conn  // p.c, readable without waiting for an operation
}

// New validates o and returns a Port; nothing is opened until the first
// Write or Query, so a printer that is off at start-up is not an error.
func New(o *Opts) (*Port, error) {
	op := DefaultOpts
	if o != nil {
		op.Kind = o.Kind
		op.Path = o.Path
		op.Log = o.Log
		if o.Baud != 0 {
			op.Baud = o.Baud
		}
		if o.DialTimeout != 0 {
			op.DialTimeout = o.DialTimeout
		}
		if o.WriteTimeout != 0 {
			op.WriteTimeout = o.WriteTimeout
		}
	}
	op.Log = deps.Log(op.Log)
	if op.Path == "" {
		return nil, fmt.Errorf("%w: empty path", ErrBadOpts)
	}
	p := &Port{o: op, log: op.Log}
	switch op.Kind {
	case Serial:
		if !validBaud(op.Baud) {
			return nil, fmt.Errorf("%w: baud %d is not a standard rate", ErrBadOpts, op.Baud)
		}
		p.open = p.openSerial
	case USB:
		p.open = p.openFile
	case TCP:
		p.open = p.openTCP
	default:
		return nil, fmt.Errorf("%w: kind %q: want serial, usb or tcp", ErrBadOpts, op.Kind)
	}
	return p, nil
}

// Device is the resolved device (or address) of the current or last link.
func (p *Port) Device() string {
	p.stMu.Lock()
	defer p.stMu.Unlock()
	if p.dev == "" {
		return p.o.Path
	}
	return p.dev
}

// Online reports whether a link is open and its reader has seen no
// error: an unplug shows here as soon as the kernel reports it.
func (p *Port) Online() bool {
	p.stMu.Lock()
	c := p.cur
	p.stMu.Unlock()
	if c == nil {
		return false
	}
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

func (p *Port) setState(dev string, c *conn) {
	p.stMu.Lock()
	if dev != "" {
		p.dev = dev
	}
	p.cur = c
	p.stMu.Unlock()
}

// Write implements Transport.
func (p *Port) Write(ctx context.Context, b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, err := p.connLocked(ctx)
	if err != nil {
		return 0, err
	}
	n, err := c.l.write(ctx, b, p.o.WriteTimeout)
	if err != nil {
		if ctx.Err() != nil && n == 0 {
			return 0, ctx.Err()
		}
		p.dropLocked(err)
		return n, fmt.Errorf("%w: write %s: after %d of %d bytes: %v", ErrUnplugged, c.dev, n, len(b), err)
	}
	return n, nil
}

// Query implements Transport.
func (p *Port) Query(ctx context.Context, req []byte, f Framer, timeout time.Duration) ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, err := p.connLocked(ctx)
	if err != nil {
		return nil, err
	}
	c.discard()
	if _, err := c.l.write(ctx, req, p.o.WriteTimeout); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		p.dropLocked(err)
		return nil, fmt.Errorf("%w: write %s: %v", ErrUnplugged, c.dev, err)
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		got, ok := c.take(f)
		if ok {
			// Bytes beyond a whole reply that arrived with it mean the
			// printer is not speaking the protocol we think.
			if extra := c.pending(); extra > 0 {
				return got, fmt.Errorf("%w: %d unexpected bytes after the reply from %s", ErrIncomplete, extra, c.dev)
			}
			return got, nil
		}
		select {
		case <-c.notify:
		case <-c.done:
			if got, ok := c.take(f); ok {
				return got, nil
			}
			err := c.failure()
			p.dropLocked(err)
			return nil, fmt.Errorf("%w: read %s: %v", ErrUnplugged, c.dev, err)
		case <-t.C:
			if n := c.pending(); n > 0 {
				return c.snapshot(), fmt.Errorf("%w: %d bytes in %v from %s", ErrIncomplete, n, timeout, c.dev)
			}
			return nil, fmt.Errorf("%w: no reply in %v from %s", ErrSilent, timeout, c.dev)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Close implements Transport.
func (p *Port) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	if p.c == nil {
		return nil
	}
	err := p.c.close()
	p.c = nil
	p.setState("", nil)
	return err
}

// connLocked returns the live link, reopening it when it failed since the
// last use (the device may be back, perhaps under a new name).
func (p *Port) connLocked(ctx context.Context) (*conn, error) {
	if p.closed {
		return nil, ErrClosed
	}
	if p.c != nil {
		select {
		case <-p.c.done:
			p.dropLocked(p.c.failure())
		default:
			return p.c, nil
		}
	}
	l, dev, err := p.open(ctx)
	if err != nil {
		p.setState("", nil)
		return nil, fmt.Errorf("%w: open %s: %v", ErrUnplugged, p.o.Path, err)
	}
	p.c = startConn(l, dev)
	p.setState(dev, p.c)
	p.log.Info("printer link open", "path", p.o.Path, "device", dev)
	return p.c, nil
}

func (p *Port) dropLocked(cause error) {
	if p.c == nil {
		return
	}
	p.log.Warn("printer link lost", "path", p.o.Path, "device", p.c.dev, "err", cause)
	p.c.close()
	p.c = nil
	p.setState("", nil)
}

// link is one open device.
type link interface {
	// read blocks for input; (0, nil) means "nothing yet, call again".
	read(b []byte) (int, error)
	write(ctx context.Context, b []byte, limit time.Duration) (int, error)
	close() error
}

// conn is an open link and the goroutine that reads from it.
type conn struct {
	l   link
	dev string

	mu     sync.Mutex
	buf    []byte
	err    error
	notify chan struct{}
	done   chan struct{} // closed when the reader stops
	once   sync.Once
}

func startConn(l link, dev string) *conn {
	c := &conn{l: l, dev: dev, notify: make(chan struct{}, 1), done: make(chan struct{})}
	go c.pump()
	return c
}

func (c *conn) pump() {
	defer close(c.done)
	b := make([]byte, 512)
	for {
		n, err := c.l.read(b)
		if n > 0 {
			c.mu.Lock()
			c.buf = append(c.buf, b[:n]...)
			if over := len(c.buf) - maxPending; over > 0 {
				c.buf = append(c.buf[:0], c.buf[over:]...)
			}
			c.mu.Unlock()
			select {
			case c.notify <- struct{}{}:
			default:
			}
		}
		if err != nil {
			c.mu.Lock()
			c.err = err
			c.mu.Unlock()
			return
		}
	}
}

func (c *conn) failure() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		return errors.New("link closed")
	}
	return c.err
}

func (c *conn) discard() {
	c.mu.Lock()
	c.buf = c.buf[:0]
	c.mu.Unlock()
	select {
	case <-c.notify:
	default:
	}
}

// take removes and returns one complete reply, if the buffer holds one.
func (c *conn) take(f Framer) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := f(c.buf)
	if n <= 0 || n > len(c.buf) {
		return nil, false
	}
	out := append([]byte(nil), c.buf[:n]...)
	c.buf = append(c.buf[:0], c.buf[n:]...)
	return out, true
}

func (c *conn) pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.buf)
}

func (c *conn) snapshot() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]byte(nil), c.buf...)
}

func (c *conn) close() error {
	var err error
	c.once.Do(func() { err = c.l.close() })
	return err
}
