package transport

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"fieldkit/internal/testutil"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// ptyPrinter is the far end of a pseudo-terminal standing in for a
// printer: it records what it receives and answers a query byte with the
// reply the test sets.
type ptyPrinter struct {
	t      *testing.T
	master *os.File
	slave  string

	mu      sync.Mutex
	got     []byte
	replies map[byte][]byte
	done    chan struct{}
}

func newPtyPrinter(t *testing.T, replies map[byte][]byte) *ptyPrinter {
	t.Helper()
	m, s := openPty(t)
	name := s.Name()
	// Keep the slave open in the test as well, so that the master does
	// not see a hangup between the transport's reopens.
	t.Cleanup(func() { s.Close() })
	p := &ptyPrinter{t: t, master: m, slave: name, replies: replies, done: make(chan struct{})}
	go p.serve()
	t.Cleanup(p.unplug)
	return p
}

// openPty returns a raw pty whose master is non-blocking, so that closing
// it interrupts a pending read and the slave sees the hangup at once.
func openPty(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, s, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	raw(t, s)
	fd, err := unix.Dup(int(m.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
	if err := unix.SetNonblock(fd, true); err != nil {
		t.Fatal(err)
	}
	return os.NewFile(uintptr(fd), "ptmx"), s
}

func raw(t *testing.T, f *os.File) {
	t.Helper()
	tio, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	tio.Iflag = 0
	tio.Oflag = 0
	tio.Lflag = 0
	tio.Cflag |= unix.CS8 | unix.CREAD | unix.CLOCAL
	tio.Cc[unix.VMIN] = 1
	tio.Cc[unix.VTIME] = 0
	if err := unix.IoctlSetTermios(int(f.Fd()), unix.TCSETS, tio); err != nil {
		t.Fatal(err)
	}
}

func (p *ptyPrinter) serve() {
	defer close(p.done)
	b := make([]byte, 256)
	for {
		n, err := p.master.Read(b)
		if n > 0 {
			p.mu.Lock()
			p.got = append(p.got, b[:n]...)
			var out []byte
			for _, c := range b[:n] {
				out = append(out, p.replies[c]...)
			}
			p.mu.Unlock()
			if len(out) > 0 {
				p.master.Write(out)
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *ptyPrinter) received() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]byte(nil), p.got...)
}

func (p *ptyPrinter) setReply(q byte, r []byte) {
	p.mu.Lock()
	p.replies[q] = r
	p.mu.Unlock()
}

func (p *ptyPrinter) unplug() {
	p.master.Close()
	<-p.done
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, 5*time.Second, what, cond)
}

func symlinkTo(t *testing.T, dir, target string) string {
	t.Helper()
	l := filepath.Join(dir, "printer-counter")
	tmp := l + ".new"
	os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, l); err != nil {
		t.Fatal(err)
	}
	return l
}

func TestDevicePortsQueryAndWrite(t *testing.T) {
	for _, kind := range []Kind{Serial, USB} {
		t.Run(string(kind), func(t *testing.T) {
			pp := newPtyPrinter(t, map[byte][]byte{'?': {0x12}})
			port, err := New(&Opts{Kind: kind, Path: symlinkTo(t, t.TempDir(), pp.slave), Baud: 115200})
			if err != nil {
				t.Fatal(err)
			}
			defer port.Close()
			ctx := context.Background()
			got, err := port.Query(ctx, []byte("?"), Fixed(1), time.Second)
			if err != nil || !bytes.Equal(got, []byte{0x12}) {
				t.Fatalf("Query = %x, %v; want 12", got, err)
			}
			if port.Device() != pp.slave {
				t.Errorf("Device = %q, want the resolved %q", port.Device(), pp.slave)
			}
			job := bytes.Repeat([]byte("LABEL "), 100)
			if n, err := port.Write(ctx, job); err != nil || n != len(job) {
				t.Fatalf("Write = %d, %v", n, err)
			}
			waitFor(t, "the job to arrive", func() bool { return bytes.HasSuffix(pp.received(), job) })
		})
	}
}

func TestQuerySilentAndGarbled(t *testing.T) {
	pp := newPtyPrinter(t, map[byte][]byte{'g': {0xff, 0xfe}})
	port, err := New(&Opts{Kind: Serial, Path: pp.slave, Baud: 115200})
	if err != nil {
		t.Fatal(err)
	}
	defer port.Close()
	ctx := context.Background()
	if _, err := port.Query(ctx, []byte("s"), Fixed(1), 200*time.Millisecond); !errors.Is(err, ErrSilent) {
		t.Fatalf("silent printer: err = %v, want ErrSilent", err)
	}
	got, err := port.Query(ctx, []byte("g"), Fixed(4), 200*time.Millisecond)
	if !errors.Is(err, ErrIncomplete) || !bytes.Equal(got, []byte{0xff, 0xfe}) {
		t.Fatalf("short reply: %x, %v; want fffe, ErrIncomplete", got, err)
	}
	// Leftovers of the garbled reply must not be taken for the next one.
	pp.setReply('g', []byte{0x16})
	got, err = port.Query(ctx, []byte("g"), Fixed(1), time.Second)
	if err != nil || !bytes.Equal(got, []byte{0x16}) {
		t.Fatalf("after garbage: %x, %v; want 16", got, err)
	}
}

func TestReconnectUnderNewName(t *testing.T) {
	for _, kind := range []Kind{Serial, USB} {
		t.Run(string(kind), func(t *testing.T) { testReconnect(t, kind) })
	}
}

func testReconnect(t *testing.T, kind Kind) {
	dir := t.TempDir()
	first := newPtyPrinter(t, map[byte][]byte{'?': {1}})
	path := symlinkTo(t, dir, first.slave)
	port, err := New(&Opts{Kind: kind, Path: path, Baud: 115200})
	if err != nil {
		t.Fatal(err)
	}
	defer port.Close()
	ctx := context.Background()
	if _, err := port.Query(ctx, []byte("?"), Fixed(1), time.Second); err != nil {
		t.Fatal(err)
	}
	first.unplug()
	waitFor(t, "the port to notice the unplug", func() bool { return !port.Online() })
	if _, err := port.Write(ctx, []byte("x")); !errors.Is(err, ErrUnplugged) {
		t.Fatalf("write to unplugged printer: %v, want ErrUnplugged", err)
	}

	second := newPtyPrinter(t, map[byte][]byte{'?': {2}})
	symlinkTo(t, dir, second.slave)
	got, err := port.Query(ctx, []byte("?"), Fixed(1), time.Second)
	if err != nil || !bytes.Equal(got, []byte{2}) {
		t.Fatalf("after replug: %x, %v; want 02 from the new device", got, err)
	}
	if port.Device() != second.slave {
		t.Errorf("Device = %q, want %q", port.Device(), second.slave)
	}
}

func TestUnplugMidWriteReportsPartial(t *testing.T) {
	m, s := openPty(t)
	defer s.Close()
	port, err := New(&Opts{Kind: Serial, Path: s.Name(), Baud: 115200})
	if err != nil {
		t.Fatal(err)
	}
	defer port.Close()
	// The printer takes a little, then is pulled out while the job is
	// still going in (the pty buffer is far smaller than the job).
	go func() {
		b := make([]byte, 100)
		io.ReadFull(m, b)
		m.Close()
	}()
	job := bytes.Repeat([]byte{'Z'}, 1<<20)
	n, err := port.Write(context.Background(), job)
	if !errors.Is(err, ErrUnplugged) || n == 0 || n >= len(job) {
		t.Fatalf("Write = %d, %v; want a partial count and ErrUnplugged", n, err)
	}
}

func TestTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	conns := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns <- c
			go func() {
				b := make([]byte, 64)
				for {
					n, err := c.Read(b)
					if n > 0 && bytes.IndexByte(b[:n], '?') >= 0 {
						c.Write([]byte("OK\r\n"))
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	port, err := New(&Opts{Kind: TCP, Path: ln.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	defer port.Close()
	crlf := func(b []byte) int {
		if i := bytes.Index(b, []byte("\r\n")); i >= 0 {
			return i + 2
		}
		return 0
	}
	ctx := context.Background()
	if got, err := port.Query(ctx, []byte("?"), crlf, time.Second); err != nil || string(got) != "OK\r\n" {
		t.Fatalf("Query = %q, %v", got, err)
	}
	// The printer drops the connection (power cycle); the next query dials again.
	(<-conns).Close()
	waitFor(t, "the port to notice the close", func() bool { return !port.Online() })
	if got, err := port.Query(ctx, []byte("?"), crlf, time.Second); err != nil || string(got) != "OK\r\n" {
		t.Fatalf("Query after reconnect = %q, %v", got, err)
	}
	ln.Close()
	(<-conns).Close()
	waitFor(t, "the port to notice the close", func() bool { return !port.Online() })
	if _, err := port.Write(ctx, []byte("x")); !errors.Is(err, ErrUnplugged) {
		t.Fatalf("write with nothing listening: %v, want ErrUnplugged", err)
	}
}

func TestNewRefusesBadOpts(t *testing.T) {
	for _, o := range []Opts{
		{Kind: Serial, Path: ""},
		{Kind: Serial, Path: "/dev/ttyUSB0", Baud: 12345},
		{Kind: "parallel", Path: "/dev/lp0"},
	} {
		if _, err := New(&o); !errors.Is(err, ErrBadOpts) {
			t.Errorf("New(%+v) = %v, want ErrBadOpts", o, err)
		}
	}
}

func TestClosedPort(t *testing.T) {
	pp := newPtyPrinter(t, map[byte][]byte{})
	port, err := New(&Opts{Kind: Serial, Path: pp.slave, Baud: 115200})
	if err != nil {
		t.Fatal(err)
	}
	port.Close()
	if _, err := port.Write(context.Background(), []byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Write after Close = %v", err)
	}
}
