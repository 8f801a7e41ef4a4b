package scanner

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"fieldkit/internal/confutil"
	"fieldkit/internal/testutil"
)

// TestReplayRecordedScans replays the recorded session through a pipe,
// a few bytes at a time (a read may end inside an event), and expects
// exactly the codes scanned, with shift applied and Enter ending each.
func TestReplayRecordedScans(t *testing.T) {
	rec := readRecording(t)
	if len(rec)%EventSize != 0 || len(rec) < 100*EventSize {
		t.Fatalf("recording of %d bytes", len(rec))
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		defer pw.Close()
		for b := rec; len(b) > 0; {
			n := min(len(b), 7)
			pw.Write(b[:n])
			b = b[n:]
		}
	}()
	var got []string
	var d Decoder
	err = ReadKeys(pr, &d, func(s string) { got = append(got, s) })
	if !errors.Is(err, io.EOF) {
		t.Fatalf("ReadKeys: %v", err)
	}
	if !slices.Equal(got, recordedScans) {
		t.Fatalf("got %q\nwant %q", got, recordedScans)
	}
}

func TestDecoderShiftCapsAndOverflow(t *testing.T) {
	var d Decoder
	var got []string
	press := func(code uint16) {
		for _, v := range []int32{1, 0} {
			if s, ok := d.Key(code, v); ok {
				got = append(got, s)
			}
		}
	}
	// Right shift held over two keys, then caps lock.
	d.Key(keyRightShift, 1)
	press(30) // A
	press(39) // :
	d.Key(keyRightShift, 0)
	press(30) // a
	press(keyCapsLock)
	press(30) // A
	d.Key(keyLeftShift, 1)
	press(30) // a: shift undoes caps lock for letters
	press(2)  // !
	d.Key(keyLeftShift, 0)
	press(29) // Left Ctrl: no character
	press(keyKPEnter)
	press(keyEnter) // empty: no code
	if want := []string{"A:aAa!"}; !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	for i := 0; i <= MaxCode; i++ {
		press(2)
	}
	press(keyEnter)
	press(3)
	press(keyEnter)
	if want := []string{"A:aAa!", "2"}; !slices.Equal(got, want) || d.Dropped != 1 {
		t.Fatalf("got %q dropped %d", got, d.Dropped)
	}
}

// TestGrabRefusesAFile: OpenKeyboard takes the exclusive grab, and a
// path that is not an input device says so.
func TestGrabRefusesAFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "event0")
	os.WriteFile(f, nil, 0o644)
	if _, err := OpenKeyboard(f); !errors.Is(err, ErrNotInput) {
		t.Fatalf("OpenKeyboard(file): %v", err)
	}
	if _, err := OpenKeyboard("/nonexistent/event9"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("OpenKeyboard(missing): %v", err)
	}
}

// TestSerialOverPty: a scanner in serial mode, played by the master side
// of a pseudo-terminal, sends codes ended by CR, LF and CR LF, split
// across writes; the port hanging up ends Run with an error.
func TestSerialOverPty(t *testing.T) {
	m, s, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	tio, err := unix.IoctlGetTermios(int(s.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	tio.Iflag, tio.Oflag, tio.Lflag = 0, 0, 0
	if err := unix.IoctlSetTermios(int(s.Fd()), unix.TCSETS, tio); err != nil {
		t.Fatal(err)
	}
	sc, err := OpenSerial(s.Name(), 9600)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	s.Close()
	codes := make(chan string, 10)
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { done <- sc.Run(ctx, func(c string) { codes <- c }) }()
	for _, w := range []string{"demo:12:3f9a", "01bc\r\n", "A-1042\r", "MZXW6YTBOI2DKNZTGQ3DMNJXGQ\n"} {
		if _, err := m.Write([]byte(w)); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	testutil.WaitFor(t, 10*time.Second, "three codes from the pty", func() bool {
		for {
			select {
			case c := <-codes:
				got = append(got, c)
			default:
				return len(got) >= 3
			}
		}
	})
	if want := []string{"demo:12:3f9a01bc", "A-1042", "MZXW6YTBOI2DKNZTGQ3DMNJXGQ"}; !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	m.Close() // unplugged
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "hung up") {
			t.Fatalf("Run after hang-up: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not notice the hang-up")
	}
}

func TestSerialStopsOnCancel(t *testing.T) {
	m, s, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	sc, err := OpenSerial(s.Name(), 115200)
	s.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sc.Run(ctx, func(string) {}) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop")
	}
}

func TestLineReader(t *testing.T) {
	var l LineReader
	var got []string
	emit := func(s string) { got = append(got, s) }
	l.Feed([]byte("\r\nab"), emit)
	l.Feed([]byte("c\r"), emit)
	l.Feed([]byte("\nd\n\n"), emit)
	l.Feed(bytes.Repeat([]byte("x"), MaxCode+1), emit)
	l.Feed([]byte("\ne\r"), emit)
	if want := []string{"abc", "d", "e"}; !slices.Equal(got, want) || l.Dropped != 1 {
		t.Fatalf("got %q dropped %d", got, l.Dropped)
	}
}

func TestConfigValidate(t *testing.T) {
	c := Config{
		{Name: "desk1", Mode: "keyboard", Device: "/dev/input/event3"},
		{Name: "desk1", Mode: "serial", Device: "/dev/ttyACM0", Baud: 9601},
		{Name: "Desk 3", Mode: "hid", Device: "ttyUSB0"},
		{Name: "desk4", Mode: "keyboard", Device: "/dev/input/event3", Baud: 9600},
		{},
	}
	p := confutil.NewProblems()
	c.Validate(p.At("scanners"))
	var got []string
	for _, pr := range p.List() {
		got = append(got, pr.Path+": "+pr.Msg)
	}
	all := strings.Join(got, "\n")
	for _, want := range []string{
		`scanners[1].name: "desk1" is listed twice`,
		`scanners[1].baud: 9601`,
		`scanners[2].name: "Desk 3"`,
		`scanners[2].mode: unknown mode "hid"`,
		`scanners[2].device: "ttyUSB0": expected an absolute device path`,
		`scanners[3].baud: a keyboard-mode scanner has no baud rate`,
		`scanners[3].device: /dev/input/event3 is already scanner desk1`,
		`scanners[4].name: missing`,
		`scanners[4].mode: missing`,
		`scanners[4].device: missing`,
	} {
		if !strings.Contains(all, want) {
			t.Errorf("no problem %q in:\n%s", want, all)
		}
	}
	if len(got) != 10 {
		t.Errorf("%d problems, want 10:\n%s", len(got), all)
	}
	ok := confutil.NewProblems()
	Config{{Name: "desk1", Mode: "serial", Device: "/dev/ttyACM0"}}.Validate(ok)
	if !ok.Empty() {
		t.Fatalf("valid config refused: %v", ok.List())
	}
}

// FuzzReadKeys feeds arbitrary bytes as input events: the decoder never
// panics, and every code it returns is non-empty, at most MaxCode bytes
// of printable ASCII.
func FuzzReadKeys(f *testing.F) {
	rec, err := os.ReadFile("testdata/scan-session.evdev")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(nativeLayout(rec)[:EventSize*60])
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{1, 0, 28, 0, 1, 0, 0, 0}, 6))
	f.Fuzz(func(t *testing.T, b []byte) {
		var d Decoder
		err := ReadKeys(bytes.NewReader(b), &d, func(s string) {
			if s == "" || len(s) > MaxCode {
				t.Fatalf("code of %d bytes", len(s))
			}
			for i := 0; i < len(s); i++ {
				if s[i] < 0x20 || s[i] > 0x7e {
					t.Fatalf("code %q holds a non-printable byte", s)
				}
			}
		})
		if !errors.Is(err, io.EOF) {
			t.Fatalf("ReadKeys: %v", err)
		}
	})
}
