package fake

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"time"
)

// Sentinel errors.
var (
	ErrClosed    = errors.New("fake printer: closed")
	ErrWidth     = errors.New("fake printer: paper width must be 1-4096 dots (384 for 58 mm, 576 for 80 mm)")
	ErrBuffer    = errors.New("fake printer: buffer must be at least 64 bytes")
	ErrBaud      = errors.New("fake printer: baud must be 0 (unpaced) or 300-4000000")
	ErrTransport = errors.New("fake printer: transport already open")
)

// Opts configures a Printer.
type Opts struct {
	// Lang is ESCPOS, ZPL or TSPL.
	Lang string
	// WidthDots is the paper width: 384 (58 mm) or 576 (80 mm) at 203 dpi.
	WidthDots int
	// Baud sets the read speed: baud/10 bytes per second, as on a
	// serial line with 8N1 framing. 0 reads as fast as the host writes.
	Baud int
	// BufferBytes is the input buffer. While the printer cannot print
	// (paper out, cover open) received bytes stay in it; when it is full
	// the printer stops reading and the host's writes block.
	BufferBytes int
	// Link, when set, is a symlink kept pointing at the current
	// pseudo-terminal, like a udev rule's stable name; it is removed on
	// Unplug and re-pointed on Plug.
	Link string
	// OutDir, when set, receives label-0001.png, ... as labels print,
	// numbered on from the highest label-NNNN.png already there, so a
	// restarted printer never overwrites earlier previews.
	OutDir string
	// NoRender skips drawing labels (Label.PNG stays nil), for benches.
	NoRender bool
	// Seed seeds the Garbage replies.
	Seed uint64
	// Logger receives debug lines; nil discards them.
	Logger *slog.Logger
}

// DefaultOpts is an 80 mm ESC/POS printer on a 115200 baud line with a
// 4 KiB buffer.
func DefaultOpts() Opts {
	return Opts{Lang: ESCPOS, WidthDots: 576, Baud: 115200, BufferBytes: 4096}
}

// Stats counts what the printer has seen.
type Stats struct {
	Received  int64 // bytes taken into the input buffer, all transports
	Queries   int   // status queries received (answered or not)
	Printed   int   // labels printed
	Pending   int   // finished labels waiting for paper or a closed cover
	Held      int   // bytes in the input buffer
	Discarded int   // unfinished labels lost to Unplug
}

// Printer is the fake device. Its methods are safe for concurrent use.
type Printer struct {
	opts Opts
	log  *slog.Logger

	mu        sync.Mutex
	dec       Decoder
	state     State
	rng       *rand.Rand
	held      int
	pending   []*Label
	labels    []Label
	stats     Stats
	changed   chan struct{} // closed and replaced on every change
	closed    bool
	plugged   bool
	pty       *ptyPort
	wantPTY   bool
	lastPath  string
	tcp       *tcpPort
	tcpAddr   string
	partBytes int // bytes of the unfinished label
	previewN  int // number of the last preview written to OutDir

	wg sync.WaitGroup
}

// New validates o and returns a printer with no transport open; call
// OpenPTY and/or ListenTCP. A nil o means DefaultOpts.
func New(o *Opts) (*Printer, error) {
	opts := DefaultOpts()
	if o != nil {
		opts = *o
	}
	if opts.BufferBytes == 0 {
		opts.BufferBytes = 4096
	}
	if opts.WidthDots < 1 || opts.WidthDots > 4096 {
		return nil, ErrWidth
	}
	if opts.BufferBytes < 64 {
		return nil, ErrBuffer
	}
	if opts.Baud != 0 && (opts.Baud < 300 || opts.Baud > 4000000) {
		return nil, ErrBaud
	}
	dec, err := NewDecoder(opts.Lang, opts.WidthDots)
	if err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Printer{
		opts:     opts,
		log:      log.With("fake_printer", opts.Lang),
		dec:      dec,
		rng:      rand.New(rand.NewPCG(opts.Seed, 0x5eed)),
		changed:  make(chan struct{}),
		plugged:  true,
		previewN: lastPreview(opts.OutDir),
	}, nil
}

var previewRE = regexp.MustCompile(`^label-([0-9]{4,})\.png$`)

// lastPreview is the highest N of the label-N.png files in dir (0 for
// none, or no dir yet).
func lastPreview(dir string) int {
	if dir == "" {
		return 0
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range entries {
		if m := previewRE.FindStringSubmatch(e.Name()); m != nil {
			if v, err := strconv.Atoi(m[1]); err == nil {
				n = max(n, v)
			}
		}
	}
	return n
}

// Lang is the printer's language.
func (p *Printer) Lang() string { return p.opts.Lang }

// SetState changes the scripted state; labels held by PaperOut or
// CoverOpen print as soon as the new state allows.
func (p *Printer) SetState(s State) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.state = s
	p.printPending()
	p.notify()
}

// State is the scripted state.
func (p *Printer) State() State {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state
}

// Labels returns the printed labels, oldest first.
func (p *Printer) Labels() []Label {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Label(nil), p.labels...)
}

// Printed is the number of labels printed (a label asking for several
// copies counts once; see Label.Copies).
func (p *Printer) Printed() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.labels)
}

// Stats returns the counters.
func (p *Printer) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stats
	s.Printed, s.Pending, s.Held = len(p.labels), len(p.pending), p.held
	return s
}

// WaitPrinted blocks until at least n labels have printed or ctx ends.
func (p *Printer) WaitPrinted(ctx context.Context, n int) error {
	return p.wait(ctx, func() bool { return len(p.labels) >= n })
}

// WaitQueries blocks until at least n status queries have arrived.
func (p *Printer) WaitQueries(ctx context.Context, n int) error {
	return p.wait(ctx, func() bool { return p.stats.Queries >= n })
}

// WaitHeld blocks until the input buffer holds at least n bytes (use
// BufferBytes to wait for a full buffer).
func (p *Printer) WaitHeld(ctx context.Context, n int) error {
	return p.wait(ctx, func() bool { return p.held >= n })
}

func (p *Printer) wait(ctx context.Context, cond func() bool) error {
	for {
		p.mu.Lock()
		ok, ch, closed := cond(), p.changed, p.closed
		p.mu.Unlock()
		if ok {
			return nil
		}
		if closed {
			return ErrClosed
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// notify wakes waiters; p.mu is held.
func (p *Printer) notify() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// ingest runs received bytes through the decoder and returns the replies
// to send back; p.mu is not held.
func (p *Printer) ingest(b []byte) []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stats.Received += int64(len(b))
	p.held += len(b)
	p.partBytes += len(b)
	var out []byte
	for _, ev := range p.dec.Feed(b) {
		switch ev.Kind {
		case EventQuery:
			p.stats.Queries++
			info := statusInfo{pending: len(p.pending), bufferFull: p.held >= p.opts.BufferBytes, partial: p.partBytes > 0}
			out = append(out, reply(p.opts.Lang, ev, p.state, info, p.rng)...)
		case EventLabel:
			p.partBytes -= ev.Label.Bytes
			p.pending = append(p.pending, ev.Label)
			if len(ev.Label.Unknown) > 0 {
				p.log.Debug("label with unknown commands", "unknown", ev.Label.Unknown)
			}
		}
	}
	p.partBytes = max(p.partBytes, 0)
	p.printPending()
	p.notify()
	return out
}

// printPending prints held labels if the state allows; p.mu is held.
func (p *Printer) printPending() {
	if !p.state.printing() {
		return
	}
	for _, l := range p.pending {
		p.held = max(0, p.held-l.Bytes)
		if !p.opts.NoRender {
			png, err := encodePNG(renderLabel(l, p.opts.WidthDots))
			if err != nil {
				p.log.Warn("render label", "err", err)
			}
			l.PNG = png
		}
		p.labels = append(p.labels, *l)
		if p.opts.OutDir != "" && l.PNG != nil {
			p.previewN++
			name := filepath.Join(p.opts.OutDir, fmt.Sprintf("label-%04d.png", p.previewN))
			if err := os.WriteFile(name, l.PNG, 0o644); err != nil {
				p.log.Warn("write label preview", "file", name, "err", err)
			}
		}
	}
	p.pending = nil
}

// room is how many of n bytes the printer takes into its buffer now: all
// while it prints, what is left of the buffer while it holds.
func (p *Printer) room(n int) (int, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state.printing() {
		return n, p.changed
	}
	return min(n, max(0, p.opts.BufferBytes-p.held)), p.changed
}

// serve reads from one connection until it fails or stop closes, pacing
// reads to the baud rate and answering status queries on the same line.
// Bytes read but not yet taken into the buffer wait in a small line FIFO;
// while they wait, nothing more is read and the host's writes back up.
func (p *Printer) serve(rw io.ReadWriter, stop <-chan struct{}) {
	chunk := 4096
	var perByte time.Duration
	if p.opts.Baud > 0 {
		rate := p.opts.Baud / 10
		chunk = max(1, rate/100) // about 10 ms of line time
		perByte = time.Second / time.Duration(rate)
	}
	buf := make([]byte, chunk)
	var lineFree time.Time // when the simulated wire has delivered all read bytes
	for {
		k, err := rw.Read(buf)
		if k > 0 && perByte > 0 {
			now := time.Now()
			if lineFree.Before(now) {
				lineFree = now
			}
			lineFree = lineFree.Add(time.Duration(k) * perByte)
			if !sleepUntil(lineFree, stop) {
				return
			}
		}
		for fifo := buf[:k]; len(fifo) > 0; {
			n, changed := p.room(len(fifo))
			if n == 0 {
				select {
				case <-changed:
					continue
				case <-stop:
					return
				}
			}
			if out := p.ingest(fifo[:n]); len(out) > 0 {
				if _, werr := rw.Write(out); werr != nil {
					p.log.Debug("status reply", "err", werr)
				}
			}
			fifo = fifo[n:]
		}
		if err != nil {
			return
		}
	}
}

func sleepUntil(t time.Time, stop <-chan struct{}) bool {
	d := time.Until(t)
	if d <= 0 {
		return true
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-stop:
		return false
	}
}

// Unplug takes the printer off every transport: the pseudo-terminal's
// master closes (the host then gets EIO on the slave), the stable link is
// removed, TCP connections and the listener close. The unfinished label is
// lost, as when a printer loses its connection mid-job; finished labels
// waiting for paper stay.
func (p *Printer) Unplug() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	pt, tc := p.pty, p.tcp
	p.pty, p.tcp = nil, nil
	p.plugged = false
	p.mu.Unlock()

	var errs []error
	if pt != nil {
		errs = append(errs, pt.close(p.opts.Link))
	}
	if tc != nil {
		errs = append(errs, tc.close())
	}

	p.mu.Lock()
	if p.partBytes > 0 || p.dec.Flush() != nil {
		p.stats.Discarded++
	}
	p.dec.Reset()
	p.held = max(0, p.held-p.partBytes)
	p.partBytes = 0
	p.notify()
	p.mu.Unlock()
	return errors.Join(errs...)
}

// Plug brings the transports back: a new pseudo-terminal under a new
// path (the link re-pointed to it), and TCP listening on the same port.
func (p *Printer) Plug() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	if p.plugged {
		p.mu.Unlock()
		return nil
	}
	p.plugged = true
	wantPTY, addr := p.wantPTY, p.tcpAddr
	p.mu.Unlock()
	var errs []error
	if wantPTY {
		if _, err := p.openPTY(); err != nil {
			errs = append(errs, err)
		}
	}
	if addr != "" {
		if _, err := p.listenTCP(addr); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Plugged reports whether the printer is plugged in.
func (p *Printer) Plugged() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.plugged
}

// Close unplugs every transport and stops every goroutine.
func (p *Printer) Close() error {
	err := p.Unplug()
	if errors.Is(err, ErrClosed) {
		return nil
	}
	p.mu.Lock()
	p.closed = true
	p.notify()
	p.mu.Unlock()
	p.wg.Wait()
	return err
}
