package boards

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/physic"
)

// Model strings as the boards' device trees report them (NUL-terminated).
var models = []struct {
	model, file, want string
}{
	{"Raspberry Pi Zero 2 W Rev 1.0", "proc/device-tree/model", "rpi-zero2w"},
	{"Raspberry Pi 3 Model B Plus Rev 1.3", "proc/device-tree/model", "rpi3"},
	{"Raspberry Pi 4 Model B Rev 1.5", "proc/device-tree/model", "rpi4"},
	{"Raspberry Pi 5 Model B Rev 1.0", "proc/device-tree/model", "rpi5"},
	{"Raspberry Pi Compute Module 4 Rev 1.1", "sys/firmware/devicetree/base/model", "cm4"},
	{"Pine64 RockPro64 v2.1", "proc/device-tree/model", "generic"},
	{"", "", "generic"}, // no device tree at all (an x86 laptop)
}

func TestDetect(t *testing.T) {
	for _, m := range models {
		t.Run(m.want+"/"+m.model, func(t *testing.T) {
			root := t.TempDir()
			if m.file != "" {
				p := filepath.Join(root, m.file)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(m.model+"\x00"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			d, err := Detect(root)
			if err != nil {
				t.Fatal(err)
			}
			if d.Profile.Name != m.want || d.Model != m.model {
				t.Fatalf("Detect = %q (model %q), want %q (model %q)", d.Profile.Name, d.Model, m.want, m.model)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	p := Profiles["rpi5"]
	cases := []struct {
		name, want, err string
	}{
		{"cue_lamp", "GPIO17", ""},
		{"GPIO5", "GPIO5", ""},
		{"strobe", "GPIO26", ""}, // from the config override
		{"motor", "GPIO13", ""},  // the override wins
		{"nope", "", `no pin named "nope" on board rpi5`},
	}
	over := map[string]string{"strobe": "GPIO26", "motor": "GPIO13"}
	for _, c := range cases {
		got, err := p.Resolve(c.name, over)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("Resolve(%q) err = %v, want %q", c.name, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("Resolve(%q) = %q, %v; want %q", c.name, got, err, c.want)
		}
	}
	if !p.HasPWM("GPIO18") || p.HasPWM("GPIO17") {
		t.Error("PWM lines wrong")
	}
}

func TestSimBoard(t *testing.T) {
	b, err := Open(Options{Name: "sim", Pins: map[string]string{"strobe": "GPIO26"}})
	if err != nil {
		t.Fatal(err)
	}
	s := b.(*Sim)
	lamp, err := b.Pin("cue_lamp")
	if err != nil {
		t.Fatal(err)
	}
	same, _ := b.Pin("GPIO17")
	if lamp != same {
		t.Fatal("logical and line name gave different pins")
	}
	if err := lamp.Out(gpio.High); err != nil {
		t.Fatal(err)
	}
	motor, _ := b.Pin("motor")
	if err := motor.PWM(gpio.DutyHalf, 200*physic.Hertz); err != nil {
		t.Fatal(err)
	}
	st := b.Status().(map[string]any)["pins"].([]SimPinStatus)
	if len(st) != 2 || st[0].Line != "GPIO17" || !st[0].Level || st[0].Names[0] != "cue_lamp" {
		t.Fatalf("status %+v", st)
	}
	if st[1].Line != "GPIO18" || st[1].Duty != 50 || st[1].Hz != 200 {
		t.Fatalf("motor status %+v", st[1])
	}
	// A haptic cue ends with the pin driven low: no duty is left over.
	if err := motor.Out(gpio.Low); err != nil {
		t.Fatal(err)
	}
	st = b.Status().(map[string]any)["pins"].([]SimPinStatus)
	if st[1].Level || st[1].Duty != 0 || st[1].Hz != 0 {
		t.Fatalf("motor after going low %+v, want low with no PWM", st[1])
	}
	if _, err := b.Pin("nope"); err == nil {
		t.Fatal("unknown pin accepted")
	}

	// Buttons: an injected press arrives as edges.
	btn, _ := s.Line("button")
	if err := btn.In(gpio.PullUp, gpio.BothEdges); err != nil {
		t.Fatal(err)
	}
	if err := s.Press("button"); err != nil {
		t.Fatal(err)
	}
	if !btn.WaitForEdge(time.Second) || btn.Read() != gpio.Low {
		t.Fatal("press did not arrive as a falling edge")
	}

	// I2C: unknown address fails like a NACK; attached emulators answer.
	bus, _ := b.I2C("")
	if err := bus.Tx(0x40, []byte{0}, make([]byte, 2)); err == nil {
		t.Fatal("empty address answered")
	}
	s.Bus("1").Attach(0x40, devFunc(func(w, r []byte) error { r[0], r[1] = 0x54, 0x49; return nil }))
	r := make([]byte, 2)
	if err := bus.Tx(0x40, []byte{0xFE}, r); err != nil || r[0] != 0x54 {
		t.Fatalf("emulator: %v %x", err, r)
	}

	// SPI records frames.
	port, _ := b.SPI("")
	c, _ := port.Connect(2500*physic.KiloHertz, 0, 8)
	if err := c.Tx([]byte{1, 2, 3}, nil); err != nil {
		t.Fatal(err)
	}
	if s.ports["0.0"].Frames() != 1 || string(s.ports["0.0"].Last()) != "\x01\x02\x03" {
		t.Fatal("SPI frame not recorded")
	}
}

type devFunc func(w, r []byte) error

func (f devFunc) Tx(w, r []byte) error { return f(w, r) }

// A line the board does not bring out is refused by name, for a line
// name and for a logical name that maps to it.
func TestResolveRefusesMissingLines(t *testing.T) {
	for _, c := range []struct {
		board, pin string
		pins       map[string]string
		want       string
	}{
		{"rpi4", "GPIO99", nil, "board rpi4 has no line GPIO99; its lines are GPIO0-GPIO27"},
		{"sim", "lamp", map[string]string{"lamp": "GPIO28"}, `pin "lamp" is GPIO28: board sim has no line GPIO28`},
		{"rpi5", "no_such_name", nil, `no pin named "no_such_name" on board rpi5`},
	} {
		_, err := Profiles[c.board].Resolve(c.pin, c.pins)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %s: %v, want %q", c.board, c.pin, err, c.want)
		}
	}
	if l, err := Profiles["generic"].Resolve("GPIO99", nil); err != nil || l != "GPIO99" {
		t.Errorf("generic GPIO99: %q %v; a board of unknown lines takes any line name", l, err)
	}
	if l, err := Profiles["rpi4"].Resolve("GPIO27", nil); err != nil || l != "GPIO27" {
		t.Errorf("rpi4 GPIO27: %q %v", l, err)
	}
	if _, err := NewSim(nil).Pin("GPIO99"); err == nil {
		t.Error("the sim board handed out GPIO99")
	}
}
