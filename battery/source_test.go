package battery

import (
	"bufio"
	"context"
	"errors"
	"math"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/i2c/i2ctest"

	"fieldkit/drivers/power"
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
	s := &inaSource{kind: KindINA219, board: &playbackBoard{bus: bus}, clk: clock.NewFake(tStart),
		rig: Rig{ShuntOhms: 0.1, MaxCurrentA: 3.2}}
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
	s := &inaSource{kind: KindINA226, board: &playbackBoard{bus: bus}, clk: clock.NewFake(tStart),
		rig: Rig{Address: 0x44, ShuntOhms: 0.002, MaxCurrentA: 32.768}}
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
	if _, err := (&inaSource{kind: KindINA226, board: &playbackBoard{err: errors.New("no /dev/i2c-1")}, clk: clock.Real(),
		rig: Rig{ShuntOhms: 0.002, MaxCurrentA: 20}}).Poll(context.Background()); err == nil || !strings.Contains(err.Error(), "no /dev/i2c-1") {
		t.Fatalf("board error: %v", err)
	}
}

func TestParseTelemetry(t *testing.T) {
	pct := []Value{{Field: "battery.pct", Unit: UnitPercent}}
	cases := []struct {
		name    string
		payload string
		vals    []Value
		want    power.Sample
		bad     string
	}{
		{name: "nested", payload: `{"battery":{"pct":81.5}}`, vals: pct, want: power.Sample{Percent: 81.5}},
		{name: "string with %", payload: `{"battery":{"pct":"64%"}}`, vals: pct, want: power.Sample{Percent: 64}},
		{name: "array index", payload: `{"packs":[{"v":14.8},{"v":15.1}]}`, vals: []Value{{Field: "packs.1.v", Unit: UnitVolts}}, want: power.Sample{Volts: 15.1}},
		{name: "plain number", payload: " 42\n", vals: []Value{{Unit: UnitPercent}}, want: power.Sample{Percent: 42}},
		{name: "volts and watts", payload: `{"bat":{"v":16.2},"load":{"w":38}}`, vals: []Value{{Field: "bat.v", Unit: UnitVolts}, {Field: "load.w", Unit: UnitWatts}}, want: power.Sample{Volts: 16.2, Watts: 38}},
		{name: "missing key", payload: `{"battery":{}}`, vals: pct, bad: `field battery.pct: no key "pct"`},
		{name: "not an object", payload: `{"battery":5}`, vals: pct, bad: `"pct": not an object`},
		{name: "not JSON", payload: `battery=5`, vals: pct, bad: `not JSON`},
		{name: "bool", payload: `{"battery":{"pct":true}}`, vals: pct, bad: `value is bool`},
		{name: "out of range", payload: `{"battery":{"pct":140}}`, vals: pct, bad: `140 is not a percentage`},
		{name: "plain garbage", payload: `full`, vals: []Value{{Unit: UnitPercent}}, bad: `payload: "full" is not a number`},
		{name: "NaN", payload: `NaN`, vals: []Value{{Unit: UnitVolts}}, bad: `not a number`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			smp, err := parseTelemetry(tStart, []byte(c.payload), c.vals)
			if c.bad != "" {
				if err == nil || !strings.Contains(err.Error(), c.bad) || !errors.Is(err, ErrPayload) {
					t.Fatalf("err %v, want %q", err, c.bad)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range []struct {
				name      string
				got, want float64
			}{{"percent", smp.Percent, c.want.Percent}, {"volts", smp.Volts, c.want.Volts}, {"watts", smp.Watts, c.want.Watts}} {
				if f.want == 0 && !math.IsNaN(f.got) || f.want != 0 && f.got != f.want {
					t.Errorf("%s = %v, want %v", f.name, f.got, f.want)
				}
			}
		})
	}
}

func FuzzParseTelemetry(f *testing.F) {
	for _, s := range []string{`{"battery":{"pct":81.5}}`, `{"a":[1,{"b":"2"}]}`, `42`, `{"battery":{"pct":"1e400"}}`, `[`} {
		f.Add(s, "battery.pct")
		f.Add(s, "")
		f.Add(s, "a.1.b")
	}
	f.Fuzz(func(t *testing.T, payload, field string) {
		smp, err := parseTelemetry(tStart, []byte(payload), []Value{{Field: field, Unit: UnitPercent}})
		if err == nil && !(smp.Percent >= 0 && smp.Percent <= 100) {
			t.Fatalf("accepted percent %v from %q", smp.Percent, payload)
		}
	})
}

func TestNUTSample(t *testing.T) {
	smp, err := nutSample(tStart, map[string]string{"battery.charge": "87", "battery.runtime": "2310",
		"ups.status": "OB DISCHRG", "battery.voltage": "26.4", "ups.realpower": "120"})
	if err != nil {
		t.Fatal(err)
	}
	if smp.Percent != 87 || smp.Runtime != 2310*time.Second || smp.Status != "OB DISCHRG" || smp.Volts != 26.4 || smp.Watts != 120 {
		t.Fatalf("%+v", smp)
	}
	if _, err := nutSample(tStart, map[string]string{"ups.status": "OL"}); err == nil {
		t.Fatal("no battery.charge accepted")
	}
	if _, err := nutSample(tStart, map[string]string{"battery.charge": "lots"}); err == nil {
		t.Fatal("a non-numeric charge accepted")
	}
}

// TestNUTSource talks to a one-connection upsd stand-in on loopback.
func TestNUTSource(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan []string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- nil
			return
		}
		defer c.Close()
		var got []string
		sc := bufio.NewScanner(c)
		for sc.Scan() {
			got = append(got, sc.Text())
			switch sc.Text() {
			case "USERNAME mon", "PASSWORD pw":
				c.Write([]byte("OK\n"))
			case "LIST VAR rack":
				c.Write([]byte("BEGIN LIST VAR rack\nVAR rack battery.charge \"55\"\nVAR rack battery.runtime \"600\"\nVAR rack ups.status \"OB\"\nEND LIST VAR rack\n"))
			case "LOGOUT":
				c.Write([]byte("OK Goodbye\n"))
				done <- got
				return
			}
		}
		done <- got
	}()
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	var p int
	for _, ch := range port {
		p = p*10 + int(ch-'0')
	}
	pwFile := t.TempDir() + "/pw"
	if err := writeFile(pwFile, "pw\n"); err != nil {
		t.Fatal(err)
	}
	s := &nutSource{rig: Rig{Host: host, Port: p, UPS: "rack", Username: "mon", PasswordFile: pwFile}, clk: clock.NewFake(tStart)}
	smp, err := s.Poll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if smp.Percent != 55 || smp.Runtime != 10*time.Minute || smp.Status != "OB" {
		t.Fatalf("%+v", smp)
	}
	s.Close()
	select {
	case got := <-done:
		want := "USERNAME mon|PASSWORD pw|LIST VAR rack|LOGOUT"
		if strings.Join(got, "|") != want {
			t.Fatalf("server got %q", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("server never saw LOGOUT")
	}
}

func TestSimDrains(t *testing.T) {
	clk := clock.NewFake(tStart)
	r := Rig{Name: "demo", Source: KindSim, StartPercent: 50, Drain: 20 * time.Minute}
	pk, err := r.pack()
	if err != nil {
		t.Fatal(err)
	}
	s := newSim(r, pk, clk)
	first, _ := s.Poll(context.Background())
	clk.Advance(2 * time.Minute) // a tenth of the drain time: 10 points
	later, _ := s.Poll(context.Background())
	if s.m.Percent() < 39.9 || s.m.Percent() > 40.1 {
		t.Fatalf("after 2 of 20 minutes the pack is at %.2f %%, want 40", s.m.Percent())
	}
	if !(later.Volts < first.Volts) || later.Amps <= 0 || math.Abs(later.Watts-294) > 10 {
		t.Fatalf("first %+v later %+v", first, later)
	}
	clk.Advance(time.Hour)
	flat, _ := s.Poll(context.Background())
	if flat.Volts != 0 {
		t.Fatalf("an empty pack reads %v V", flat.Volts)
	}
}

func writeFile(path, s string) error { return os.WriteFile(path, []byte(s), 0o600) }
