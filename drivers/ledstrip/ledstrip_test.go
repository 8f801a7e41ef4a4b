package ledstrip

import (
	"bytes"
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"periph.io/x/conn/v3/spi/spitest"

	"fieldkit/drivers/cue"
	"fieldkit/internal/clock"
)

var update = flag.Bool("update", false, "rewrite the golden frames in testdata")

const ms = time.Millisecond

func lv(n int) *int { return &n }

// decodeWS2812 turns one SPI frame back into RGB pixels, failing on any
// byte that is not a valid NRZ symbol pair.
func decodeWS2812(t *testing.T, w []byte) [][3]byte {
	t.Helper()
	if len(w) < 6 || (len(w)-6)%12 != 0 {
		t.Fatalf("frame of %d bytes is not 3+12n+3", len(w))
	}
	for _, b := range append(append([]byte{}, w[:3]...), w[len(w)-3:]...) {
		if b != 0 {
			t.Fatalf("latch bytes are not zero: % x", w)
		}
	}
	body := w[3 : len(w)-3]
	var px [][3]byte
	for p := 0; p < len(body); p += 12 {
		var grb [3]byte
		for c := 0; c < 3; c++ {
			var v byte
			for _, sym := range body[p+4*c : p+4*c+4] {
				for _, nib := range []byte{sym >> 4, sym & 0xF} {
					switch nib {
					case 0x8:
						v <<= 1
					case 0xE:
						v = v<<1 | 1
					default:
						t.Fatalf("byte %02x is not an NRZ symbol pair", sym)
					}
				}
			}
			grb[c] = v
		}
		px = append(px, [3]byte{grb[1], grb[0], grb[2]})
	}
	return px
}

// decodeAPA102 turns one SPI frame back into RGB pixels.
func decodeAPA102(t *testing.T, w []byte, n int) [][3]byte {
	t.Helper()
	if !bytes.Equal(w[:4], []byte{0, 0, 0, 0}) {
		t.Fatalf("no start frame: % x", w[:4])
	}
	var px [][3]byte
	for i := 0; i < n; i++ {
		f := w[4+4*i : 8+4*i]
		if f[0] != 0xFF {
			t.Fatalf("pixel %d header %02x, want full global brightness", i, f[0])
		}
		px = append(px, [3]byte{f[3], f[2], f[1]})
	}
	for _, b := range w[4+4*n:] {
		if b != 0xFF {
			t.Fatalf("end frame % x", w[4+4*n:])
		}
	}
	return px
}

// show renders pixels as one character each: '.' off, '#' the colour c.
func show(t *testing.T, px [][3]byte, c [3]byte) string {
	var b strings.Builder
	for _, p := range px {
		switch p {
		case [3]byte{}:
			b.WriteByte('.')
		case c:
			b.WriteByte('#')
		default:
			t.Fatalf("pixel %v is neither off nor %v", p, c)
		}
	}
	return b.String()
}

type rig struct {
	t    *testing.T
	rec  *spitest.Record
	clk  *clock.Fake
	s    *Strip
	kind string
	n    int
	seen int
}

func newRig(t *testing.T, kind string, n int) *rig {
	t.Helper()
	r := &rig{t: t, rec: &spitest.Record{}, clk: clock.NewFake(time.Unix(0, 0)), kind: kind, n: n}
	o := &Opts{Name: "bar", NumPixels: n, Clock: r.clk, Frame: 50 * ms}
	var err error
	if kind == "ws2812" {
		r.s, err = NewWS2812(r.rec, o)
	} else {
		r.s, err = NewAPA102(r.rec, o)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.s.Close() })
	return r
}

// frames waits until k new frames were sent and returns them.
func (r *rig) frames(k int) [][]byte {
	r.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		r.rec.Lock()
		ops := r.rec.Ops
		r.rec.Unlock()
		if len(ops) >= r.seen+k {
			var out [][]byte
			for _, op := range ops[r.seen : r.seen+k] {
				out = append(out, op.W)
			}
			r.seen += k
			return out
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("only %d of %d frames sent", len(ops)-r.seen, k)
		}
		time.Sleep(time.Millisecond)
	}
}

func (r *rig) pixels(w []byte) [][3]byte {
	if r.kind == "ws2812" {
		return decodeWS2812(r.t, w)
	}
	return decodeAPA102(r.t, w, r.n)
}

// step advances the clock once the strip waits on it, and returns the
// next frame as a picture.
func (r *rig) step(d time.Duration, c [3]byte) string {
	r.t.Helper()
	if !r.clk.WaitForTimers(1, 5*time.Second) {
		r.t.Fatal("the effect is not waiting on the clock")
	}
	r.clk.Advance(d)
	return show(r.t, r.pixels(r.frames(1)[0]), c)
}

func TestEffects(t *testing.T) {
	red := [3]byte{255, 0, 0}
	cases := []struct {
		name  string
		n     int
		a     cue.Action
		c     [3]byte
		steps []time.Duration
		want  []string // first frame, then one per step
	}{
		{"solid colour at half brightness", 4, cue.Action{Do: cue.Color, Color: "#ff8000", Level: lv(50)},
			[3]byte{127, 64, 0}, nil, []string{"####"}},
		{"on is white", 3, cue.Action{Do: cue.On}, [3]byte{255, 255, 255}, nil, []string{"###"}},
		{"countdown fills", 4, cue.Action{Do: cue.Effect, Effect: "countdown", For: time.Second, Color: "#ff0000"},
			red, []time.Duration{250 * ms, 250 * ms, 250 * ms, 250 * ms},
			[]string{"....", "#...", "##..", "###.", "####"}},
		{"countdown empties", 4, cue.Action{Do: cue.Effect, Effect: "countdown", For: time.Second, Reverse: true, Color: "#ff0000"},
			red, []time.Duration{250 * ms, 250 * ms, 250 * ms, 250 * ms},
			[]string{"####", "###.", "##..", "#...", "...."}},
		{"countdown over a length that does not divide", 3, cue.Action{Do: cue.Effect, Effect: "countdown", For: time.Second, Color: "#ff0000"},
			red, []time.Duration{333333334, 333333333, 333333333},
			[]string{"...", "#..", "##.", "###"}},
		{"chase wraps and ends dark", 3, cue.Action{Do: cue.Effect, Effect: "chase", For: 200 * ms, Color: "#ff0000"},
			red, []time.Duration{50 * ms, 50 * ms, 50 * ms, 50 * ms},
			[]string{"#..", ".#.", "..#", "#..", "..."}},
		{"flash twice", 2, cue.Action{Do: cue.Effect, Effect: "flash", Period: 100 * ms, Count: 2, Color: "#ff0000"},
			red, []time.Duration{50 * ms, 50 * ms, 50 * ms},
			[]string{"##", "..", "##", ".."}},
		{"blink", 2, cue.Action{Do: cue.Blink, Period: 400 * ms, Count: 1, Color: "#ff0000"},
			red, []time.Duration{200 * ms}, []string{"##", ".."}},
		{"pulse", 2, cue.Action{Do: cue.Pulse, For: 300 * ms, Color: "#ff0000"},
			red, []time.Duration{300 * ms}, []string{"##", ".."}},
	}
	for _, kind := range []string{"ws2812", "apa102"} {
		for _, c := range cases {
			t.Run(kind+"/"+c.name, func(t *testing.T) {
				r := newRig(t, kind, c.n)
				if got := show(t, r.pixels(r.frames(1)[0]), c.c); got != strings.Repeat(".", c.n) {
					t.Fatalf("New left the strip %s", got)
				}
				if err := r.s.Apply(context.Background(), c.a); err != nil {
					t.Fatal(err)
				}
				got := []string{show(t, r.pixels(r.frames(1)[0]), c.c)}
				for _, d := range c.steps {
					got = append(got, r.step(d, c.c))
				}
				if !reflect.DeepEqual(got, c.want) {
					t.Fatalf("frames %q, want %q", got, c.want)
				}
				// The effect is over: nothing more is sent, nothing waits.
				r.clk.Advance(time.Hour)
				for deadline := time.Now().Add(5 * time.Second); r.s.run.Busy(); time.Sleep(time.Millisecond) {
					if time.Now().After(deadline) {
						t.Fatal("the effect goroutine did not end")
					}
				}
				r.rec.Lock()
				extra := len(r.rec.Ops) - r.seen
				r.rec.Unlock()
				if extra != 0 {
					t.Fatalf("%d frames after the effect ended", extra)
				}
			})
		}
	}
}

// TestGoldenCountdown pins the exact bytes on the wire for both chips.
func TestGoldenCountdown(t *testing.T) {
	for _, kind := range []string{"ws2812", "apa102"} {
		t.Run(kind, func(t *testing.T) {
			r := newRig(t, kind, 3)
			if err := r.s.Apply(context.Background(), cue.Action{Do: cue.Effect, Effect: "countdown", For: 3 * time.Second, Color: "#ff8000", Level: lv(50)}); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 3; i++ {
				r.clk.WaitForTimers(1, 5*time.Second)
				r.clk.Advance(time.Second)
			}
			var b strings.Builder
			for i, f := range r.frames(5) {
				fmt.Fprintf(&b, "frame %d: %s\n", i, hex.EncodeToString(f))
			}
			golden(t, kind+"_countdown.golden", b.String())
		})
	}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Fatalf("frames differ from %s:\ngot:\n%swant:\n%s", path, got, want)
	}
}

func TestNextApplyStopsEffect(t *testing.T) {
	r := newRig(t, "ws2812", 4)
	r.frames(1)
	if err := r.s.Apply(context.Background(), cue.Action{Do: cue.Effect, Effect: "chase", Color: "#ff0000"}); err != nil {
		t.Fatal(err)
	}
	r.frames(1)
	r.step(50*ms, [3]byte{255, 0, 0})
	if err := r.s.Apply(context.Background(), cue.Action{Do: cue.Off}); err != nil {
		t.Fatal(err)
	}
	if got := show(t, r.pixels(r.frames(1)[0]), [3]byte{}); got != "...." {
		t.Fatalf("off painted %s", got)
	}
	if r.clk.Pending() != 0 {
		t.Fatal("the chase still waits on the clock")
	}
	if st := r.s.State().(State); st.On || st.Color != "#ff0000" {
		t.Fatalf("state %+v", st)
	}
	if err := r.s.Apply(context.Background(), cue.Action{Do: cue.Haptic, Pattern: "short"}); err == nil {
		t.Fatal("haptic accepted by a strip")
	}
}

func TestBadOpts(t *testing.T) {
	for _, o := range []Opts{{NumPixels: -1}, {NumPixels: 5000}, {Color: "red"}, {Frame: time.Microsecond}} {
		if _, err := New(nil, &o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}
