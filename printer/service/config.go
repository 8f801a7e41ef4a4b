package service

import (
	"net"
	"regexp"
	"sort"
	"strconv"
	"time"

	"fieldkit/internal/confutil"
	"fieldkit/printer/label"
	"fieldkit/printer/transport"
)

// Config is the printers: section, printer name → settings:
//
//	printers:
//	  counter:
//	    language: escpos          # escpos | zpl | tspl
//	    transport: serial         # serial | usb | tcp | fake
//	    path: /dev/fieldkit/printer-counter   # serial, usb
//	    baud: 115200              # serial (default 9600); fake: wire speed, 0 = unpaced
//	    width_dots: 576           # 384 for 58 mm, 576 for 80 mm at 203 dpi
//	    code_page: cp858
//	    status_timeout: 300ms     # per status reply
//	  labels:
//	    language: zpl
//	    transport: tcp
//	    address: 192.168.1.40:9100
type Config map[string]Printer

// Printer is one printer's settings: its profile and how to reach it.
type Printer struct {
	label.Profile `yaml:",inline"`
	// Transport is serial, usb, tcp, or fake (an in-process printer that
	// writes PNG previews under the data dir: the demo).
	Transport string `yaml:"transport"`
	// Path is the device for serial and usb; prefer a stable link
	// (/dev/fieldkit/printer-*, /dev/serial/by-id/...).
	Path string `yaml:"path"`
	// Address is host:port for tcp (port 9100 if left out).
	Address string `yaml:"address"`
	Baud    int    `yaml:"baud"`
	// StatusTimeout bounds each status reply (default 300ms).
	StatusTimeout time.Duration `yaml:"status_timeout"`
	// PollInterval is how often an idle, parked or offline printer's
	// status is read (default 2s).
	PollInterval time.Duration `yaml:"poll_interval"`
	// MaxAttempts is how many times a job is begun before it fails
	// (default 5); only attempts of which no byte left are retried.
	MaxAttempts int `yaml:"max_attempts"`
}

// Defaults.
const (
	DefaultBaud          = 9600
	DefaultStatusTimeout = 300 * time.Millisecond
	DefaultPollInterval  = 2 * time.Second
	DefaultMaxAttempts   = 5
	DefaultTCPPort       = "9100"
)

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

// withDefaults fills zero fields.
func (p Printer) withDefaults() Printer {
	p.Profile = p.Profile.WithDefaults()
	if p.Transport == "serial" && p.Baud == 0 {
		p.Baud = DefaultBaud
	}
	if p.StatusTimeout == 0 {
		p.StatusTimeout = DefaultStatusTimeout
	}
	if p.PollInterval == 0 {
		p.PollInterval = DefaultPollInterval
	}
	if p.MaxAttempts == 0 {
		p.MaxAttempts = DefaultMaxAttempts
	}
	if p.Transport == "tcp" && p.Address != "" {
		if _, _, err := net.SplitHostPort(p.Address); err != nil {
			p.Address = net.JoinHostPort(p.Address, DefaultTCPPort)
		}
	}
	return p
}

// Validate records every problem, by path below the section.
func (c Config) Validate(p *confutil.Problems) {
	names := make([]string, 0, len(c))
	for n := range c {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		c[name].validate(name, p.At(name))
	}
}

func (pr Printer) validate(name string, p *confutil.Problems) {
	if !nameRE.MatchString(name) {
		p.Addf("", "printer name %q: expected 1-32 lower-case letters, digits, '_' or '-' (it becomes an MQTT topic level)", name)
	}
	pr.Profile.Validate(p)
	d := pr.withDefaults()
	switch pr.Transport {
	case "serial":
		if pr.Path == "" {
			p.Addf("path", "a serial printer needs path: its device, e.g. /dev/fieldkit/printer-%s or /dev/serial/by-id/...", name)
		}
		if !transport.ValidBaud(d.Baud) {
			p.Addf("baud", "%d is not a standard rate; expected e.g. 9600, 19200, 38400, 115200", pr.Baud)
		}
	case "usb":
		if pr.Path == "" {
			p.Addf("path", "a USB printer needs path: its device, e.g. /dev/usb/lp0 or /dev/fieldkit/printer-%s", name)
		}
		if pr.Baud != 0 {
			p.Addf("baud", "baud only applies to serial and fake printers")
		}
	case "tcp":
		if pr.Address == "" {
			p.Addf("address", "a network printer needs address: host:port, e.g. 192.168.1.40:9100")
		} else if host, port, err := net.SplitHostPort(d.Address); err != nil || host == "" {
			p.Addf("address", "%q: expected host:port, e.g. 192.168.1.40:9100", pr.Address)
		} else if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			p.Addf("address", "%q: port must be 1-65535", pr.Address)
		}
		if pr.Baud != 0 {
			p.Addf("baud", "baud only applies to serial and fake printers")
		}
	case "fake":
		if pr.Baud != 0 && (pr.Baud < 300 || pr.Baud > 4000000) {
			p.Addf("baud", "%d: expected 0 (unpaced) or 300-4000000", pr.Baud)
		}
	case "":
		p.Addf("transport", "missing; expected serial, usb, tcp or fake")
	default:
		p.Addf("transport", "%q: expected serial, usb, tcp or fake", pr.Transport)
	}
	if pr.Transport != "tcp" && pr.Address != "" {
		p.Addf("address", "address is for tcp printers; use path for serial and usb")
	}
	if (pr.Transport == "tcp" || pr.Transport == "fake") && pr.Path != "" {
		p.Addf("path", "path is for serial and usb printers")
	}
	if d.StatusTimeout < 50*time.Millisecond || d.StatusTimeout > 5*time.Second {
		p.Addf("status_timeout", "%v: expected 50ms-5s (a few hundred ms is usual)", pr.StatusTimeout)
	}
	if d.PollInterval < 10*time.Millisecond || d.PollInterval > time.Minute {
		p.Addf("poll_interval", "%v: expected 10ms-1m", pr.PollInterval)
	}
	if d.MaxAttempts < 1 || d.MaxAttempts > 100 {
		p.Addf("max_attempts", "%d: expected 1-100", pr.MaxAttempts)
	}
}
