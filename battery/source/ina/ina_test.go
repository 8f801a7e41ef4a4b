package ina

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/i2c/i2ctest"

	"fieldkit/internal/clock"
)

// playbackBoard hands out one scripted bus.
type playbackBoard struct {
	bus *i2ctest.Playback
	err error
}

func (b *playbackBoard) I2C(name string) (i2c.Bus, error) {
	if b.err != nil {
		return nil, b.err
	}
	return b.bus, nil
}

var tStart = time.Date(2025, 6, 1, 18, 0, 0, 0, time.UTC)

func TestINA219Source(t *testing.T) {
	// periph's ina219: calibration then configuration, then shunt, bus,
	// current, power. 0.1 Ω and 3.2 A: current LSB 97.656 µA, CAL 0x1062.
	bus := &i2ctest.Playback{DontPanic: true, Ops: []i2ctest.IO{
		{Addr: 0x40, W: []byte{0x05, 0x10, 0x62}},
		{Addr: 0x40, W: []byte{0x00, 0x1F, 0xFF}},
		{Addr: 0x40, W: []byte{0x01}, R: []byte{0x0F, 0xA0}}, // 4000 × 10 µV = 40 mV
		{Addr: 0x40, W: []byte{0x02}, R: []byte{0x3E, 0x82}}, // (0x3E82>>3)=2000 × 4 mV = 8 V, CNVR set
		{Addr: 0x40, W: []byte{0x04}, R: []byte{0x0F, 0xA0}}, // 4000 × 97.656 µA = 390.6 mA
		{Addr: 0x40, W: []byte{0x03}, R: []byte{0x00, 0xA0}}, // 160 × 1.953 mW = 312.5 mW
	}}
	s := &Source{Kind: "ina219", Board: &playbackBoard{bus: bus}, Clock: clock.NewFake(tStart),
		Config: Config{ShuntOhms: 0.1, MaxCurrentA: 3.2}}
	smp, err := s.Poll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.Close(); err != nil {
		t.Fatal(err)
	}
	if !smp.At.Equal(tStart) || math.Abs(smp.Volts-8) > 1e-9 || math.Abs(smp.Amps-0.390624) > 1e-6 || math.Abs(smp.Watts-0.3125) > 1e-6 {
		t.Fatalf("sample %+v", smp)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestINA226Source(t *testing.T) {
	bus := &i2ctest.Playback{DontPanic: true, Ops: []i2ctest.IO{
		{Addr: 0x44, W: []byte{0xFE}, R: []byte{0x54, 0x49}},
		{Addr: 0x44, W: []byte{0xFF}, R: []byte{0x22, 0x60}},
		{Addr: 0x44, W: []byte{0x00, 0x45, 0x27}},
		{Addr: 0x44, W: []byte{0x05, 0x0A, 0x00}},
		{Addr: 0x44, W: []byte{0x01}, R: []byte{0x06, 0x40}},
		{Addr: 0x44, W: []byte{0x02}, R: []byte{0x4E, 0xC0}}, // 25.2 V
		{Addr: 0x44, W: []byte{0x04}, R: []byte{0xF8, 0x30}}, // -2 A: charging
		{Addr: 0x44, W: []byte{0x03}, R: []byte{0x07, 0xE0}},
		// The next poll fails; the one after reopens the device.
		{Addr: 0x44, W: []byte{0x01}, R: []byte{0x00}},
	}}
	s := &Source{Kind: "ina226", Board: &playbackBoard{bus: bus}, Clock: clock.NewFake(tStart),
		Config: Config{Address: 0x44, ShuntOhms: 0.002, MaxCurrentA: 32.768}}
	smp, err := s.Poll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if smp.Volts != 25.2 || smp.Amps != -2 || smp.Watts != -50.4 {
		t.Fatalf("sample %+v", smp)
	}
	if _, err := s.Poll(context.Background()); err == nil {
		t.Fatal("a short read was accepted")
	}
	if s.sense != nil {
		t.Fatal("device kept after a failed read; it must be reopened")
	}
	if _, err := (&Source{Kind: "ina226", Board: &playbackBoard{err: errors.New("no /dev/i2c-1")}, Clock: clock.Real(),
		Config: Config{ShuntOhms: 0.002, MaxCurrentA: 20}}).Poll(context.Background()); err == nil || !strings.Contains(err.Error(), "no /dev/i2c-1") {
		t.Fatalf("board error: %v", err)
	}
}
