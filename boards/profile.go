package boards

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Profile describes one kind of board.
type Profile struct {
	Name string
	// Models are device tree model prefixes that identify the board.
	Models []string
	// Pins are the default logical pin names → GPIO line names; config
	// `pins:` adds to and overrides them.
	Pins map[string]string
	// PWM lists the lines with a hardware PWM channel.
	PWM []string
	// I2C and SPI name the default bus and port.
	I2C string
	SPI string
	// Serial is the default UART device.
	Serial string
	// Lines is how many GPIO lines the board brings out (GPIO0 to
	// GPIO<Lines-1>); 0 when unknown (generic Linux), where any line name
	// is taken and the kernel has the last word.
	Lines int
}

// piLines: every Raspberry Pi model brings GPIO0-27 out on its 40-pin
// header (the Pi 5's RP1 included).
const piLines = 28

// The default logical pins follow the wiring in the README's install
// notes: a cue lamp relay, a vibration motor on a PWM-capable line and a
// "reprint last label" button.
var piPins = map[string]string{
	"cue_lamp": "GPIO17",
	"relay2":   "GPIO22",
	"motor":    "GPIO18", // PWM0
	"button":   "GPIO27",
	"button2":  "GPIO23",
}

var piPWM = []string{"GPIO12", "GPIO13", "GPIO18", "GPIO19"}

// Profiles are all known boards, by name.
var Profiles = map[string]Profile{
	"rpi-zero2w": {Name: "rpi-zero2w", Models: []string{"Raspberry Pi Zero 2"}, Pins: piPins, PWM: piPWM, I2C: "1", SPI: "0.0", Serial: "/dev/serial0", Lines: piLines},
	"rpi3":       {Name: "rpi3", Models: []string{"Raspberry Pi 3"}, Pins: piPins, PWM: piPWM, I2C: "1", SPI: "0.0", Serial: "/dev/serial0", Lines: piLines},
	"rpi4":       {Name: "rpi4", Models: []string{"Raspberry Pi 4", "Raspberry Pi 400"}, Pins: piPins, PWM: piPWM, I2C: "1", SPI: "0.0", Serial: "/dev/serial0", Lines: piLines},
	"rpi5":       {Name: "rpi5", Models: []string{"Raspberry Pi 5", "Raspberry Pi 500"}, Pins: piPins, PWM: piPWM, I2C: "1", SPI: "0.0", Serial: "/dev/serial0", Lines: piLines},
	"cm4":        {Name: "cm4", Models: []string{"Raspberry Pi Compute Module 4"}, Pins: piPins, PWM: piPWM, I2C: "1", SPI: "0.0", Serial: "/dev/serial0", Lines: piLines},
	"generic":    {Name: "generic", Pins: map[string]string{}, I2C: "1", SPI: "0.0", Serial: "/dev/ttyUSB0"},
	"sim":        {Name: "sim", Pins: piPins, PWM: piPWM, I2C: "1", SPI: "0.0", Serial: "", Lines: piLines},
}

// ModelFiles are where Linux exposes the device tree model, relative to
// the root directory.
var ModelFiles = []string{"proc/device-tree/model", "sys/firmware/devicetree/base/model"}

// Detection is what Detect found.
type Detection struct {
	Profile Profile
	Model   string // the model string, "" when there is no device tree
}

// Detect reads the device tree model under root ("/" on a real box, a
// fake tree in tests) and picks the profile. A Linux machine without a
// known model is "generic".
func Detect(root string) (Detection, error) {
	var model string
	for _, f := range ModelFiles {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			continue
		}
		model = strings.TrimSpace(string(bytes.TrimRight(b, "\x00")))
		break
	}
	if model == "" {
		return Detection{Profile: Profiles["generic"]}, nil
	}
	// Longest prefix wins, so "Raspberry Pi Compute Module 4" is not
	// taken for something shorter.
	best, bestLen := "", 0
	for _, name := range profileNames() {
		for _, m := range Profiles[name].Models {
			if strings.HasPrefix(model, m) && len(m) > bestLen {
				best, bestLen = name, len(m)
			}
		}
	}
	if best == "" {
		return Detection{Profile: Profiles["generic"], Model: model}, nil
	}
	return Detection{Profile: Profiles[best], Model: model}, nil
}

// Names are the board names a config may give: "auto" (detect from the
// device tree), then every profile's name, sorted.
func Names() []string { return append([]string{"auto"}, profileNames()...) }

func profileNames() []string {
	names := make([]string, 0, len(Profiles))
	for n := range Profiles {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Resolve returns the GPIO line for a logical pin name, or the name itself
// when it already is a line name ("GPIO17"), and refuses a line the board
// does not bring out.
func (p Profile) Resolve(name string, overrides map[string]string) (string, error) {
	line, ok := overrides[name]
	if !ok {
		line, ok = p.Pins[name]
	}
	if !ok && strings.HasPrefix(name, "GPIO") {
		line, ok = name, true
	}
	if ok {
		if err := p.CheckLine(line); err != nil {
			if line != name {
				return "", fmt.Errorf("pin %q is %s: %w", name, line, err)
			}
			return "", err
		}
		return line, nil
	}
	known := make([]string, 0, len(p.Pins)+len(overrides))
	for k := range p.Pins {
		known = append(known, k)
	}
	for k := range overrides {
		if _, dup := p.Pins[k]; !dup {
			known = append(known, k)
		}
	}
	sort.Strings(known)
	return "", fmt.Errorf("no pin named %q on board %s; define it under pins: (e.g. %s: GPIO17) or use one of: %s",
		name, p.Name, name, strings.Join(known, ", "))
}

// CheckLine refuses a line name the board does not have ("GPIO99" on a
// Pi, "pin17").
func (p Profile) CheckLine(line string) error {
	n, err := strconv.Atoi(strings.TrimPrefix(line, "GPIO"))
	if !strings.HasPrefix(line, "GPIO") || err != nil || n < 0 {
		return fmt.Errorf("%q is not a GPIO line name; expected e.g. GPIO17", line)
	}
	if p.Lines > 0 && n >= p.Lines {
		return fmt.Errorf("board %s has no line %s; its lines are GPIO0-GPIO%d", p.Name, line, p.Lines-1)
	}
	return nil
}

// HasPWM reports whether line has a hardware PWM channel.
func (p Profile) HasPWM(line string) bool {
	for _, l := range p.PWM {
		if l == line {
			return true
		}
	}
	return false
}
