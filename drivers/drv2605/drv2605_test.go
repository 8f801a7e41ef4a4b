package drv2605

import (
	"context"
	"errors"
	"testing"

	"periph.io/x/conn/v3/i2c/i2ctest"

	"fieldkit/drivers/cue"
)

const addr = DefaultAddr

// initOps is the traffic of New: status, mode, library, then
// read-modify-write of feedback control and control 3 (reset values 0x36
// and 0xA0; bit 7 of 0x1A picks LRA, bit 5 of 0x1D is ERM open loop).
func initOps(status, lib, fbIn, fbOut, c3In, c3Out byte) []i2ctest.IO {
	return []i2ctest.IO{
		{Addr: addr, W: []byte{0x00}, R: []byte{status}},
		{Addr: addr, W: []byte{0x01, 0x00}},
		{Addr: addr, W: []byte{0x03, lib}},
		{Addr: addr, W: []byte{0x1A}, R: []byte{fbIn}},
		{Addr: addr, W: []byte{0x1D}, R: []byte{c3In}},
		{Addr: addr, W: []byte{0x1A, fbOut}},
		{Addr: addr, W: []byte{0x1D, c3Out}},
	}
}

func TestInit(t *testing.T) {
	cases := []struct {
		name string
		o    *Opts
		ops  []i2ctest.IO
		str  string
	}{
		{"DRV2605L ERM defaults", nil, initOps(0xE0, 1, 0x36, 0x36, 0xA0, 0xA0), "DRV2605L{playback(90), ERM, library 1}"},
		{"DRV2605 ERM library 3", &Opts{Library: 3}, initOps(0x60, 3, 0xB6, 0x36, 0x80, 0xA0), "DRV2605{playback(90), ERM, library 3}"},
		{"DRV2605L LRA", &Opts{Actuator: LRA}, initOps(0xE0, 6, 0x36, 0xB6, 0xA0, 0x80), "DRV2605L{playback(90), LRA, library 6}"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			bus := &i2ctest.Playback{Ops: c.ops, DontPanic: true}
			d, err := New(bus, c.o)
			if err != nil {
				t.Fatal(err)
			}
			if s := d.String(); s != c.str {
				t.Errorf("String() = %q, want %q", s, c.str)
			}
			if err := bus.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestNotFound(t *testing.T) {
	// A DRV2604 (id 4) has RAM instead of the effect library.
	bus := &i2ctest.Playback{Ops: []i2ctest.IO{{Addr: addr, W: []byte{0x00}, R: []byte{0x80}}}, DontPanic: true}
	if _, err := New(bus, nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("got %v, want ErrNotFound", err)
	}
	// Nothing answering is a bus error, wrapped with the register.
	if _, err := New(&i2ctest.Playback{DontPanic: true}, nil); err == nil {
		t.Fatal("silent bus accepted")
	}
	if _, err := New(&i2ctest.Playback{DontPanic: true}, &Opts{Actuator: LRA, Library: 1}); !errors.Is(err, ErrBadOpts) {
		t.Fatalf("LRA on an ERM library: %v", err)
	}
}

func TestPlayPatterns(t *testing.T) {
	cases := []struct {
		pattern string
		seq     []byte
	}{
		{"short", []byte{0x04, 1, 0}},
		{"go-live", []byte{0x04, 47, 0x80 | 25, 47, 0x80 | 25, 47, 0}},
		{"swap-battery", []byte{0x04, 12, 0x80 | 40, 47, 0}},
	}
	for _, c := range cases {
		t.Run(c.pattern, func(t *testing.T) {
			ops := initOps(0xE0, 1, 0x36, 0x36, 0xA0, 0xA0)
			ops = append(ops,
				i2ctest.IO{Addr: addr, W: []byte{0x0C, 0x00}},
				i2ctest.IO{Addr: addr, W: c.seq},
				i2ctest.IO{Addr: addr, W: []byte{0x0C, 0x01}},
				// Close: stop, then standby.
				i2ctest.IO{Addr: addr, W: []byte{0x0C, 0x00}},
				i2ctest.IO{Addr: addr, W: []byte{0x01, 0x40}},
			)
			bus := &i2ctest.Playback{Ops: ops, DontPanic: true}
			d, err := New(bus, nil)
			if err != nil {
				t.Fatal(err)
			}
			tg := NewTarget("puck", d, nil)
			if err := tg.Apply(context.Background(), cue.Action{Do: cue.Haptic, Pattern: c.pattern}); err != nil {
				t.Fatal(err)
			}
			tg.Wait()
			if st := tg.State().(TargetState); st.Error != "" || !st.Playing {
				t.Fatalf("state %+v", st)
			}
			if err := tg.Close(); err != nil {
				t.Fatal(err)
			}
			if err := bus.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestFullSequenceHasNoTerminator(t *testing.T) {
	ops := append(initOps(0xE0, 1, 0x36, 0x36, 0xA0, 0xA0),
		i2ctest.IO{Addr: addr, W: []byte{0x0C, 0x00}},
		i2ctest.IO{Addr: addr, W: []byte{0x04, 1, 2, 3, 4, 5, 6, 7, 8}},
		i2ctest.IO{Addr: addr, W: []byte{0x0C, 0x01}},
		i2ctest.IO{Addr: addr, W: []byte{0x0C}, R: []byte{0x01}},
	)
	bus := &i2ctest.Playback{Ops: ops, DontPanic: true}
	d, err := New(bus, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Play([]uint8{1, 2, 3, 4, 5, 6, 7, 8}); err != nil {
		t.Fatal(err)
	}
	if on, err := d.Playing(); !on || err != nil {
		t.Fatalf("Playing() = %v, %v", on, err)
	}
	for _, bad := range [][]uint8{nil, make([]uint8, 9), {0}, {124}} {
		if err := d.Play(bad); !errors.Is(err, ErrBadSequence) {
			t.Errorf("%v: %v", bad, err)
		}
	}
	if err := bus.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestTargetReportsBusErrorsAndRefusesOtherVerbs(t *testing.T) {
	ops := initOps(0xE0, 1, 0x36, 0x36, 0xA0, 0xA0) // then the bus goes silent
	bus := &i2ctest.Playback{Ops: ops, DontPanic: true}
	d, err := New(bus, nil)
	if err != nil {
		t.Fatal(err)
	}
	tg := NewTarget("puck", d, nil)
	if err := tg.Apply(context.Background(), cue.Action{Do: cue.On}); err == nil {
		t.Fatal("on accepted by a haptic driver")
	}
	if err := tg.Apply(context.Background(), cue.Action{Do: cue.Haptic, Pattern: "long"}); err != nil {
		t.Fatal(err)
	}
	tg.Wait()
	if st := tg.State().(TargetState); st.Error == "" || st.Playing {
		t.Fatalf("bus failure not reported: %+v", st)
	}
}
