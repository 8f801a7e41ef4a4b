package scanner

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"

	"fieldkit/internal/confutil"
)

// Config is the scanners: section of the agent's file: the barcode
// scanners at the pickup desk.
//
//	scanners:
//	  - name: desk1
//	    mode: keyboard       # a USB scanner in HID keyboard mode
//	    device: /dev/input/by-id/usb-Honeywell_Imaging-event-kbd
//	  - name: desk2
//	    mode: serial         # a scanner in serial (CDC ACM or RS-232) mode
//	    device: /dev/ttyACM0
//	    baud: 9600
type Config []Source

// Source is one scanner.
type Source struct {
	Name   string `yaml:"name"`
	Mode   string `yaml:"mode"`
	Device string `yaml:"device"`
	// Baud is the serial mode's line speed (default 9600).
	Baud int `yaml:"baud"`
}

// Modes.
const (
	ModeKeyboard = "keyboard"
	ModeSerial   = "serial"
)

// DefaultBaud is the serial speed scanners ship with.
const DefaultBaud = 9600

var (
	nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)
	bauds  = []int{1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200}
)

// Validate records every problem, at paths such as scanners[0].device.
func (c Config) Validate(p *confutil.Problems) {
	seen := map[string]bool{}
	devs := map[string]string{}
	for i, s := range c {
		sp := p.At(fmt.Sprintf("[%d]", i))
		switch {
		case s.Name == "":
			sp.Addf("name", "missing; name each scanner (e.g. desk1): it is recorded as who handed an order over")
		case !nameRE.MatchString(s.Name):
			sp.Addf("name", "%q: expected 1-32 lower-case letters, digits, '_' or '-'", s.Name)
		case seen[s.Name]:
			sp.Addf("name", "%q is listed twice", s.Name)
		}
		seen[s.Name] = true
		switch s.Mode {
		case ModeKeyboard:
			if s.Baud != 0 {
				sp.Addf("baud", "a keyboard-mode scanner has no baud rate; leave baud out or use mode: serial")
			}
		case ModeSerial:
			if s.Baud != 0 && !slices.Contains(bauds, s.Baud) {
				sp.Addf("baud", "%d; expected one of %v (0 for %d)", s.Baud, bauds, DefaultBaud)
			}
		case "":
			sp.Addf("mode", "missing; expected keyboard (USB HID, read from /dev/input/...) or serial")
		default:
			sp.Addf("mode", "unknown mode %q; expected keyboard or serial", s.Mode)
		}
		switch {
		case s.Device == "":
			sp.Addf("device", "missing; for keyboard mode a /dev/input/by-id/...-event-kbd link, for serial a port such as /dev/ttyACM0")
		case !filepath.IsAbs(s.Device):
			sp.Addf("device", "%q: expected an absolute device path", s.Device)
		case devs[s.Device] != "":
			sp.Addf("device", "%s is already scanner %s", s.Device, devs[s.Device])
		}
		devs[s.Device] = s.Name
	}
}

// Reader is an open scanner.
type Reader interface {
	// Run calls emit with every code scanned until ctx ends (nil) or the
	// scanner fails or goes away (an error; open it again to go on).
	Run(ctx context.Context, emit func(string)) error
	Close() error
}

// Open opens the scanner s describes.
func Open(s Source) (Reader, error) {
	if s.Mode == ModeSerial {
		baud := s.Baud
		if baud == 0 {
			baud = DefaultBaud
		}
		return OpenSerial(s.Device, baud)
	}
	return OpenKeyboard(s.Device)
}
