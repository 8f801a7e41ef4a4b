package fake

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tarm/serial"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newPrinter(t *testing.T, o Opts) *Printer {
	t.Helper()
	if o.WidthDots == 0 {
		o.WidthDots = 576
	}
	p, err := New(&o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return p
}

// openHost opens the slave side as the agent would, with read deadlines.
func openHost(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func readN(t *testing.T, r io.Reader, n int) []byte {
	t.Helper()
	if f, ok := r.(interface{ SetReadDeadline(time.Time) error }); ok {
		f.SetReadDeadline(time.Now().Add(5 * time.Second))
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		t.Fatalf("read %d status bytes: %v", n, err)
	}
	return buf
}

var queries = map[string][]byte{
	ESCPOS: {dle, eot, 1, dle, eot, 2, dle, eot, 3, dle, eot, 4},
	ZPL:    []byte("~HS"),
	TSPL:   {esc, '!', '?'},
}

// zplFlags returns the paper-out flag of string 1 and the head-up flag
// of string 2 of a ~HS reply, checking the STX/ETX/CR/LF framing.
func zplFlags(t *testing.T, b []byte) (paperOut, headUp byte) {
	t.Helper()
	var strs [][]byte
	for len(b) > 0 {
		if b[0] != stx {
			t.Fatalf("~HS string does not start with STX: %q", b)
		}
		i := bytes.IndexByte(b, etx)
		if i < 0 || len(b) < i+3 || b[i+1] != cr || b[i+2] != lf {
			t.Fatalf("~HS string not framed by ETX CR LF: %q", b)
		}
		strs = append(strs, b[1:i])
		b = b[i+3:]
	}
	if len(strs) != 3 {
		t.Fatalf("~HS has %d strings, want 3", len(strs))
	}
	f1, f2 := bytes.Split(strs[0], []byte(",")), bytes.Split(strs[1], []byte(","))
	if len(f1) != 12 || len(f2) != 11 {
		t.Fatalf("~HS strings have %d and %d fields, want 12 and 11", len(f1), len(f2))
	}
	return f1[1][0], f2[2][0]
}

// TestStatusReplies answers each language's status query in each state,
// through the pseudo-terminal.
func TestStatusReplies(t *testing.T) {
	tests := []struct {
		lang  string
		state State
		want  []byte
	}{
		{ESCPOS, Ready, []byte{0x12, 0x12, 0x12, 0x12}},
		{ESCPOS, PaperLow, []byte{0x12, 0x12, 0x12, 0x1E}},
		{ESCPOS, PaperOut, []byte{0x1A, 0x32, 0x12, 0x7E}},
		{ESCPOS, CoverOpen, []byte{0x1A, 0x16, 0x12, 0x12}},
		{ZPL, Ready, []byte("00")},
		{ZPL, PaperLow, []byte("00")},
		{ZPL, PaperOut, []byte("10")},
		{ZPL, CoverOpen, []byte("01")},
		{TSPL, Ready, []byte{0}},
		{TSPL, PaperLow, []byte{0}},
		{TSPL, PaperOut, []byte{0x04}},
		{TSPL, CoverOpen, []byte{0x01}},
	}
	for _, tt := range tests {
		t.Run(tt.lang+"/"+tt.state.String(), func(t *testing.T) {
			p := newPrinter(t, Opts{Lang: tt.lang, Baud: 115200})
			path, err := p.OpenPTY()
			if err != nil {
				t.Fatal(err)
			}
			p.SetState(tt.state)
			host := openHost(t, path)
			if _, err := host.Write(queries[tt.lang]); err != nil {
				t.Fatal(err)
			}
			if tt.lang == ZPL {
				got := readN(t, host, len(hostStatus(tt.state, statusInfo{})))
				po, hu := zplFlags(t, got)
				if po != tt.want[0] || hu != tt.want[1] {
					t.Fatalf("paper out %c head up %c, want %c %c", po, hu, tt.want[0], tt.want[1])
				}
				return
			}
			got := readN(t, host, len(tt.want))
			if !bytes.Equal(got, tt.want) {
				t.Fatalf("reply % X, want % X", got, tt.want)
			}
			if tt.lang == ESCPOS {
				for _, b := range got {
					if b&0x93 != 0x12 {
						t.Errorf("reply %02X breaks the fixed bits", b)
					}
				}
			}
		})
	}
}

// TestSilentAndGarbage: a silent printer answers nothing (the next reply on
// the line is the one to a later query), a garbage one answers bytes that
// fail the language's framing.
func TestSilentAndGarbage(t *testing.T) {
	for _, lang := range []string{ESCPOS, ZPL, TSPL} {
		t.Run(lang, func(t *testing.T) {
			p := newPrinter(t, Opts{Lang: lang, Seed: 7})
			path, err := p.OpenPTY()
			if err != nil {
				t.Fatal(err)
			}
			host := openHost(t, path)
			p.SetState(Silent)
			host.Write(queries[lang])
			if err := p.WaitQueries(ctxT(t), 1); err != nil {
				t.Fatal(err)
			}
			p.SetState(CoverOpen)
			host.Write(queries[lang])
			switch lang {
			case ESCPOS:
				if got := readN(t, host, 1); got[0] != 0x1A {
					t.Fatalf("first byte after a silent query is % X, want the cover-open reply 1A", got)
				}
				readN(t, host, 3)
			case ZPL:
				got := readN(t, host, len(hostStatus(CoverOpen, statusInfo{})))
				if _, hu := zplFlags(t, got); hu != '1' {
					t.Fatalf("head-up flag %c after a silent query", hu)
				}
			case TSPL:
				if got := readN(t, host, 1); got[0] != tsplHeadOpen {
					t.Fatalf("first byte after a silent query is % X", got)
				}
			}

			p.SetState(Garbage)
			host.Write(queries[lang])
			got := readN(t, host, 2)
			switch lang {
			case ESCPOS:
				if got[0]&0x93 == 0x12 {
					t.Fatalf("garbage % X passes the fixed-bit check", got)
				}
			case ZPL:
				if bytes.IndexByte(got, stx) >= 0 || bytes.IndexByte(got, etx) >= 0 {
					t.Fatalf("garbage % X is framed", got)
				}
			}
			if p.Stats().Queries < 3 {
				t.Fatalf("queries = %d", p.Stats().Queries)
			}
		})
	}
}

// TestLabelsOverPTY prints the reference label of each language through a
// serial port opened on the pseudo-terminal.
func TestLabelsOverPTY(t *testing.T) {
	for _, lang := range []string{ESCPOS, ZPL, TSPL} {
		t.Run(lang, func(t *testing.T) {
			dir := t.TempDir()
			p := newPrinter(t, Opts{Lang: lang, Baud: 115200, OutDir: dir})
			path, err := p.OpenPTY()
			if err != nil {
				t.Fatal(err)
			}
			port, err := serial.OpenPort(&serial.Config{Name: path, Baud: 115200})
			if err != nil {
				t.Fatal(err)
			}
			defer port.Close()
			for i := 0; i < 2; i++ {
				if _, err := port.Write(sample(lang)); err != nil {
					t.Fatal(err)
				}
			}
			if err := p.WaitPrinted(ctxT(t), 2); err != nil {
				t.Fatal(err)
			}
			for _, l := range p.Labels() {
				if !l.Complete || len(l.PNG) == 0 || l.Texts()[0] != "#1042" {
					t.Fatalf("label complete=%v png=%d texts=%q", l.Complete, len(l.PNG), l.Texts())
				}
				if l.Texts()[1] != "Ana Martínez" {
					t.Errorf("code page: got %q", l.Texts()[1])
				}
			}
			if _, err := os.Stat(filepath.Join(dir, "label-0002.png")); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestPaperOutHoldsAndBackPressure: with paper out, labels are held, the
// printer reads no more than its buffer, and paper in prints them all.
func TestPaperOutHoldsAndBackPressure(t *testing.T) {
	const buf = 512
	p := newPrinter(t, Opts{Lang: ESCPOS, BufferBytes: buf})
	path, err := p.OpenPTY()
	if err != nil {
		t.Fatal(err)
	}
	host := openHost(t, path)
	p.SetState(PaperOut)
	label := sample(ESCPOS)
	const n = 20 // well over the buffer, under the kernel's pty buffer
	wrote := make(chan error, 1)
	go func() {
		_, err := host.Write(bytes.Repeat(label, n))
		wrote <- err
	}()
	if err := p.WaitHeld(ctxT(t), buf); err != nil {
		t.Fatal(err)
	}
	st := p.Stats()
	if st.Held != buf || st.Received != buf || st.Printed != 0 {
		t.Fatalf("with paper out: %+v, want exactly %d bytes read and held, none printed", st, buf)
	}
	if st.Pending != buf/len(label) {
		t.Fatalf("pending %d, want %d", st.Pending, buf/len(label))
	}
	p.SetState(Ready)
	if err := p.WaitPrinted(ctxT(t), n); err != nil {
		t.Fatal(err)
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	if st := p.Stats(); st.Printed != n || st.Held != 0 || st.Received != int64(n*len(label)) {
		t.Fatalf("after paper in: %+v", st)
	}
}

// A link that cannot be made is reported, not left stale or missing.
func TestPTYLinkFailureIsReported(t *testing.T) {
	dir := t.TempDir()
	// The link's place is a directory with something in it: rename fails.
	link := filepath.Join(dir, "printer0")
	if err := os.MkdirAll(filepath.Join(link, "busy"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := newPrinter(t, Opts{Lang: ESCPOS, Link: link})
	if path, err := p.OpenPTY(); err == nil || !strings.Contains(err.Error(), "link "+link) {
		t.Fatalf("OpenPTY = %q, %v; want the link's error", path, err)
	}
	if _, err := os.Lstat(link + ".new"); !os.IsNotExist(err) {
		t.Fatalf("the temporary link was left behind: %v", err)
	}
	// Its directory missing: symlink fails.
	p2 := newPrinter(t, Opts{Lang: ESCPOS, Link: filepath.Join(dir, "missing", "printer1")})
	if _, err := p2.OpenPTY(); err == nil {
		t.Fatal("a link in a missing directory was accepted")
	}
}

// TestUnplugPlugPTY: unplugging gives the host EIO, the link goes away;
// plugging back brings a new path behind the same link, and an unfinished
// label is dropped rather than glued to the next one.
func TestUnplugPlugPTY(t *testing.T) {
	link := filepath.Join(t.TempDir(), "printer0")
	p := newPrinter(t, Opts{Lang: ESCPOS, Link: link})
	first, err := p.OpenPTY()
	if err != nil {
		t.Fatal(err)
	}
	if target, err := os.Readlink(link); err != nil || target != first {
		t.Fatalf("link -> %q (%v), want %q", target, err, first)
	}
	host := openHost(t, link)
	label := sample(ESCPOS)
	host.Write(label[:len(label)/2])
	if err := p.WaitHeld(ctxT(t), len(label)/2); err != nil {
		t.Fatal(err)
	}
	if err := p.Unplug(); err != nil {
		t.Fatal(err)
	}
	if _, err := host.Write([]byte("x")); !errors.Is(err, syscall.EIO) {
		t.Fatalf("write after unplug: %v, want EIO", err)
	}
	// Linux hangs the slave up: reads then end (0 bytes) or fail with EIO.
	if _, err := host.Read(make([]byte, 1)); !errors.Is(err, syscall.EIO) && err != io.EOF {
		t.Fatalf("read after unplug: %v, want EOF or EIO", err)
	}
	if _, err := os.Lstat(link); !os.IsNotExist(err) {
		t.Fatalf("link still there after unplug: %v", err)
	}
	if p.PTYPath() != "" || p.Stats().Discarded != 1 || p.Stats().Held != 0 {
		t.Fatalf("after unplug: path %q stats %+v", p.PTYPath(), p.Stats())
	}
	if err := p.Plug(); err != nil {
		t.Fatal(err)
	}
	second := p.PTYPath()
	if second == "" || second == first {
		t.Fatalf("plugged back under %q, want a new path (was %q)", second, first)
	}
	if target, _ := os.Readlink(link); target != second {
		t.Fatalf("link -> %q, want %q", target, second)
	}
	host2 := openHost(t, link)
	host2.Write(label)
	if err := p.WaitPrinted(ctxT(t), 1); err != nil {
		t.Fatal(err)
	}
	if l := p.Labels()[0]; l.Bytes != len(label) || len(l.Unknown) != 0 {
		t.Fatalf("label after replug: %d bytes, unknown %q", l.Bytes, l.Unknown)
	}
}

// TestTCP prints over a 9100-style socket, unplugs (the connection drops,
// nothing listens) and plugs back on the same port.
func TestTCP(t *testing.T) {
	p := newPrinter(t, Opts{Lang: ZPL})
	addr, err := p.ListenTCP("")
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write(append(sample(ZPL), "~HS"...))
	got := readN(t, c, len(hostStatus(Ready, statusInfo{})))
	zplFlags(t, got)
	if err := p.WaitPrinted(ctxT(t), 1); err != nil {
		t.Fatal(err)
	}
	if err := p.Unplug(); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("connection still open after unplug")
	}
	if c2, err := net.Dial("tcp", addr); err == nil {
		c2.Close()
		t.Fatal("still listening after unplug")
	}
	if err := p.Plug(); err != nil {
		t.Fatal(err)
	}
	if p.TCPAddr() != addr {
		t.Fatalf("plugged back on %s, want %s", p.TCPAddr(), addr)
	}
	c3, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	c3.Write(sample(ZPL))
	if err := p.WaitPrinted(ctxT(t), 2); err != nil {
		t.Fatal(err)
	}
}

// TestCloseStopsGoroutines: Close leaves nothing running, even with a
// reader blocked on a full buffer.
func TestCloseStopsGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	p, err := New(&Opts{Lang: TSPL, WidthDots: 384, Baud: 9600, BufferBytes: 64})
	if err != nil {
		t.Fatal(err)
	}
	path, err := p.OpenPTY()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.ListenTCP(""); err != nil {
		t.Fatal(err)
	}
	p.SetState(PaperOut)
	host, err := os.OpenFile(path, os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	host.Write(sample(TSPL))
	if err := p.WaitHeld(ctxT(t), 64); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.WaitPrinted(ctxT(t), 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("WaitPrinted after Close: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines left, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestNewValidates(t *testing.T) {
	for _, o := range []Opts{
		{Lang: "pcl", WidthDots: 384},
		{Lang: ESCPOS, WidthDots: 0},
		{Lang: ESCPOS, WidthDots: 384, BufferBytes: 10},
		{Lang: ESCPOS, WidthDots: 384, Baud: 12},
	} {
		if _, err := New(&o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
}

// A restarted printer numbers its previews on from the last one in the
// folder instead of overwriting label-0001.png.
func TestPreviewsContinueAfterRestart(t *testing.T) {
	dir := t.TempDir()
	for run := 1; run <= 2; run++ {
		p := newPrinter(t, Opts{Lang: ESCPOS, OutDir: dir})
		path, err := p.OpenPTY()
		if err != nil {
			t.Fatal(err)
		}
		host := openHost(t, path)
		for i := 0; i < 2; i++ {
			if _, err := host.Write(sample(ESCPOS)); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.WaitPrinted(ctxT(t), 2); err != nil {
			t.Fatal(err)
		}
		p.Close()
		want := []string{"label-0001.png", "label-0002.png", "label-0003.png", "label-0004.png"}[:2*run]
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range entries {
			got = append(got, e.Name())
		}
		if !slices.Equal(got, want) {
			t.Fatalf("after run %d the previews are %q, want %q", run, got, want)
		}
	}
	first, _ := os.ReadFile(filepath.Join(dir, "label-0001.png"))
	if len(first) == 0 {
		t.Fatal("the first run's preview is gone")
	}
}
