package ina226

import (
	"errors"
	"testing"
	"time"

	"periph.io/x/conn/v3/i2c/i2ctest"
	"periph.io/x/conn/v3/physic"
)

// ident is the identity check every New starts with.
func ident(addr uint16) []i2ctest.IO {
	return []i2ctest.IO{
		{Addr: addr, W: []byte{regManufID}, R: []byte{0x54, 0x49}},
		{Addr: addr, W: []byte{regDieID}, R: []byte{0x22, 0x60}},
	}
}

func TestNew(t *testing.T) {
	cases := []struct {
		name    string
		opts    Opts
		tx      []i2ctest.IO
		err     error
		lsb     physic.ElectricCurrent
		cal     uint16
		wantErr bool
	}{
		{
			name: "defaults: 2 mΩ, 20 A, 16 averages, 1.1 ms",
			opts: DefaultOpts,
			tx: append(ident(0x40),
				i2ctest.IO{Addr: 0x40, W: []byte{regConfig, 0x45, 0x27}},
				// 20 A / 2^15 = 610351 nA; 0.00512 / (610.351 µA × 2 mΩ) = 4194 = 0x1062
				i2ctest.IO{Addr: 0x40, W: []byte{regCalibration, 0x10, 0x62}},
			),
			lsb: 610351 * physic.NanoAmpere,
			cal: 0x1062,
		},
		{
			// The datasheet's worked example: 1 mA LSB with a 2 mΩ shunt is CAL 2560.
			name: "datasheet example, address 0x45, 1 average, 140 µs / 8.244 ms",
			opts: Opts{Address: 0x45, ShuntResistor: 2 * physic.MilliOhm, MaxCurrent: 32768 * physic.MilliAmpere,
				Averages: 1, BusConversion: 140 * time.Microsecond, ShuntConversion: 8244 * time.Microsecond},
			tx: append(ident(0x45),
				i2ctest.IO{Addr: 0x45, W: []byte{regConfig, 0x40, 0x3F}},
				i2ctest.IO{Addr: 0x45, W: []byte{regCalibration, 0x0A, 0x00}},
			),
			lsb: physic.MilliAmpere,
			cal: 2560,
		},
		{name: "address too low", opts: Opts{Address: 0x3F, ShuntResistor: 1, MaxCurrent: 1}, err: ErrAddress},
		{name: "address too high", opts: Opts{Address: 0x50, ShuntResistor: 1, MaxCurrent: 1}, err: ErrAddress},
		{name: "no shunt", opts: Opts{MaxCurrent: physic.Ampere}, err: ErrShunt},
		{name: "negative current", opts: Opts{ShuntResistor: physic.Ohm, MaxCurrent: -1}, err: ErrMaxCurrent},
		{name: "bad averages", opts: Opts{ShuntResistor: physic.Ohm, MaxCurrent: physic.Ampere, Averages: 3}, err: ErrAverages},
		{name: "bad conversion time", opts: Opts{ShuntResistor: physic.Ohm, MaxCurrent: physic.Ampere, BusConversion: time.Millisecond}, err: ErrConversionTime},
		{
			// 1 A over 1 Ω: LSB 30.5 µA, CAL 0.00512/30.5e-6 = 167.
			name: "calibration in range with a large shunt",
			opts: Opts{ShuntResistor: physic.Ohm, MaxCurrent: physic.Ampere},
			tx: append(ident(0x40),
				i2ctest.IO{Addr: 0x40, W: []byte{regConfig, 0x45, 0x27}},
				i2ctest.IO{Addr: 0x40, W: []byte{regCalibration, 0x00, 0xA7}},
			),
			lsb: 30517 * physic.NanoAmpere,
			cal: 167,
		},
		{name: "calibration underflows", opts: Opts{ShuntResistor: 100 * physic.Ohm, MaxCurrent: 10 * physic.Ampere}, err: ErrCalibration},
		{name: "calibration overflows", opts: Opts{ShuntResistor: physic.MicroOhm, MaxCurrent: physic.Ampere}, err: ErrCalibration},
		{
			name: "wrong manufacturer",
			opts: DefaultOpts,
			tx:   []i2ctest.IO{{Addr: 0x40, W: []byte{regManufID}, R: []byte{0x00, 0x00}}},
			err:  ErrNotINA226,
		},
		{
			// An INA260 answers TI's manufacturer id but die id 0x227.
			name: "wrong die",
			opts: DefaultOpts,
			tx: []i2ctest.IO{
				{Addr: 0x40, W: []byte{regManufID}, R: []byte{0x54, 0x49}},
				{Addr: 0x40, W: []byte{regDieID}, R: []byte{0x22, 0x70}},
			},
			err: ErrNotINA226,
		},
		{
			name:    "nothing at the address",
			opts:    DefaultOpts,
			tx:      nil,
			wantErr: true,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			bus := &i2ctest.Playback{Ops: c.tx, DontPanic: true}
			d, err := New(bus, &c.opts)
			if c.err != nil || c.wantErr {
				if err == nil {
					t.Fatalf("New accepted %+v", c.opts)
				}
				if c.err != nil && !errors.Is(err, c.err) {
					t.Fatalf("err = %v, want %v", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := bus.Close(); err != nil {
				t.Fatal(err)
			}
			if d.CurrentLSB() != c.lsb || d.Calibration() != c.cal {
				t.Fatalf("LSB %v cal %d, want %v %d", d.CurrentLSB(), d.Calibration(), c.lsb, c.cal)
			}
		})
	}
}

func datasheetDev(t *testing.T, more ...i2ctest.IO) (*Dev, *i2ctest.Playback) {
	t.Helper()
	ops := append(ident(0x40),
		i2ctest.IO{Addr: 0x40, W: []byte{regConfig, 0x45, 0x27}},
		i2ctest.IO{Addr: 0x40, W: []byte{regCalibration, 0x0A, 0x00}},
	)
	bus := &i2ctest.Playback{Ops: append(ops, more...), DontPanic: true}
	d, err := New(bus, &Opts{ShuntResistor: 2 * physic.MilliOhm, MaxCurrent: 32768 * physic.MilliAmpere})
	if err != nil {
		t.Fatal(err)
	}
	return d, bus
}

func TestSense(t *testing.T) {
	cases := []struct {
		name                    string
		shunt, bus, current, pw []byte
		want                    PowerMonitor
	}{
		{
			// 10 A through 2 mΩ at 12 V: shunt 20 mV = 8000 LSB, current
			// 8000×2560/2048 = 10000 mA, power 10000×9600/20000 = 4800 × 25 mW.
			name:  "12 V, 10 A discharge",
			shunt: []byte{0x1F, 0x40}, bus: []byte{0x25, 0x80}, current: []byte{0x27, 0x10}, pw: []byte{0x12, 0xC0},
			want: PowerMonitor{Shunt: 20 * physic.MilliVolt, Voltage: 12 * physic.Volt, Current: 10 * physic.Ampere, Power: 120 * physic.Watt},
		},
		{
			name:  "charging: negative shunt and current",
			shunt: []byte{0xE0, 0xC0}, bus: []byte{0x5B, 0xE0}, current: []byte{0xD8, 0xF0}, pw: []byte{0x2D, 0xF0},
			want: PowerMonitor{Shunt: -20 * physic.MilliVolt, Voltage: 29400 * physic.MilliVolt, Current: -10 * physic.Ampere, Power: 294 * physic.Watt},
		},
		{
			name:  "zero",
			shunt: []byte{0, 0}, bus: []byte{0, 0}, current: []byte{0, 0}, pw: []byte{0, 0},
		},
		{
			// Full scale: 81.9175 mV shunt, 40.96 V bus (register max 0x7FFF).
			name:  "full scale",
			shunt: []byte{0x7F, 0xFF}, bus: []byte{0x7F, 0xFF}, current: []byte{0x7F, 0xFF}, pw: []byte{0xFF, 0xFF},
			want: PowerMonitor{Shunt: 81917500 * physic.NanoVolt, Voltage: 40958750 * physic.MicroVolt, Current: 32767 * physic.MilliAmpere, Power: 65535 * 25 * physic.MilliWatt},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, bus := datasheetDev(t,
				i2ctest.IO{Addr: 0x40, W: []byte{regShunt}, R: c.shunt},
				i2ctest.IO{Addr: 0x40, W: []byte{regBus}, R: c.bus},
				i2ctest.IO{Addr: 0x40, W: []byte{regCurrent}, R: c.current},
				i2ctest.IO{Addr: 0x40, W: []byte{regPower}, R: c.pw},
			)
			got, err := d.Sense()
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Fatalf("got  %v\nwant %v", got, c.want)
			}
			if err := bus.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestSenseBusError(t *testing.T) {
	d, _ := datasheetDev(t) // the playback runs out: the bus fails
	if _, err := d.Sense(); err == nil {
		t.Fatal("Sense succeeded on a failing bus")
	}
}

func TestHalt(t *testing.T) {
	d, bus := datasheetDev(t, i2ctest.IO{Addr: 0x40, W: []byte{regConfig, 0x45, 0x20}})
	if err := d.Halt(); err != nil {
		t.Fatal(err)
	}
	if err := d.Halt(); err != nil { // idempotent: no second write
		t.Fatal(err)
	}
	if _, err := d.Sense(); !errors.Is(err, ErrHalted) {
		t.Fatalf("Sense after Halt: %v, want ErrHalted", err)
	}
	if err := bus.Close(); err != nil {
		t.Fatal(err)
	}
}
