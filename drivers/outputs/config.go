package outputs

import (
	"regexp"
	"sort"
	"strings"
	"time"

	"fieldkit/drivers/cue"
	"fieldkit/internal/confutil"
	"fieldkit/internal/topic"
)

// Config is the outputs: and buttons: sections of the agent's file. It
// is inlined in the top-level config, so both keys sit at the top.
type Config struct {
	Outputs map[string]Output `yaml:"outputs"`
	Buttons map[string]Button `yaml:"buttons"`
}

// Output is one named output; which fields apply depends on Kind.
type Output struct {
	Kind string `yaml:"kind"`

	// gpio, pwm
	Pin       string `yaml:"pin"`
	ActiveLow bool   `yaml:"active_low"`
	PWMHz     int    `yaml:"pwm_hz"`
	SoftPWM   bool   `yaml:"soft_pwm"`

	// ws2812, apa102
	SPI   string `yaml:"spi"`
	LEDs  int    `yaml:"leds"`
	Color string `yaml:"color"`

	// drv2605
	I2C      string `yaml:"i2c"`
	Actuator string `yaml:"actuator"`
	Library  int    `yaml:"library"`

	// wled, tasmota, shelly, z2m
	Topic    string `yaml:"topic"`
	Channel  int    `yaml:"channel"`
	Dimmable bool   `yaml:"dimmable"`
	Base     string `yaml:"base"`

	// wearable
	ID         string        `yaml:"id"`
	Fallback   string        `yaml:"fallback"`
	AckTimeout time.Duration `yaml:"ack_timeout"`
}

// Button is one named push button.
type Button struct {
	Pin        string        `yaml:"pin"`
	Pull       string        `yaml:"pull"` // up (default), down, none
	ActiveHigh bool          `yaml:"active_high"`
	Debounce   time.Duration `yaml:"debounce"`
}

// Kinds lists the output kinds.
var Kinds = []string{"gpio", "pwm", "ws2812", "apa102", "drv2605", "wled", "tasmota", "shelly", "z2m", "wearable"}

// fieldsOf says which optional fields each kind reads; any other field
// set on an output is a mistake worth reporting.
var fieldsOf = map[string][]string{
	"gpio":     {"pin", "active_low", "pwm_hz", "soft_pwm"},
	"pwm":      {"pin", "active_low", "pwm_hz", "soft_pwm"},
	"ws2812":   {"spi", "leds", "color"},
	"apa102":   {"spi", "leds", "color"},
	"drv2605":  {"i2c", "actuator", "library"},
	"wled":     {"topic"},
	"tasmota":  {"topic"},
	"shelly":   {"topic", "channel", "dimmable"},
	"z2m":      {"topic", "base"},
	"wearable": {"id", "fallback", "ack_timeout"},
}

func (o Output) set() map[string]bool {
	return map[string]bool{
		"pin": o.Pin != "", "active_low": o.ActiveLow, "pwm_hz": o.PWMHz != 0, "soft_pwm": o.SoftPWM,
		"spi": o.SPI != "", "leds": o.LEDs != 0, "color": o.Color != "",
		"i2c": o.I2C != "", "actuator": o.Actuator != "", "library": o.Library != 0,
		"topic": o.Topic != "", "channel": o.Channel != 0, "dimmable": o.Dimmable, "base": o.Base != "",
		"id": o.ID != "", "fallback": o.Fallback != "", "ack_timeout": o.AckTimeout != 0,
	}
}

var (
	nameRE = regexp.MustCompile(`^[a-z0-9_-]{1,32}$`)
	pinRE  = regexp.MustCompile(`^([a-z0-9_-]{1,32}|GPIO[0-9]{1,3})$`)
)

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// Validate records every problem, at paths such as outputs.lamp.pin.
func (c *Config) Validate(p *confutil.Problems) {
	pins := map[string]string{} // pin → who uses it
	usePin := func(path, pin, who string) {
		if pin == "" {
			return
		}
		if other, ok := pins[pin]; ok {
			p.Addf(path, "pin %q is already used by %s; each line drives one thing", pin, other)
			return
		}
		pins[pin] = who
	}
	for _, name := range sortedKeys(c.Outputs) {
		o := c.Outputs[name]
		at := "outputs." + name
		if !nameRE.MatchString(name) {
			p.Addf(at, "output name %q: expected 1-32 lower-case letters, digits, '_' or '-' (scenes refer to it)", name)
		}
		fields, ok := fieldsOf[o.Kind]
		if !ok {
			if o.Kind == "" {
				p.Addf(at, "missing kind; expected one of: %s", strings.Join(Kinds, ", "))
			} else {
				p.Addf(at+".kind", "unknown kind %q; expected one of: %s", o.Kind, strings.Join(Kinds, ", "))
			}
			continue
		}
		for _, f := range sortedKeys(o.set()) {
			if o.set()[f] && !contains(fields, f) {
				p.Addf(at+"."+f, "%s is not used by kind %s (its fields: %s)", f, o.Kind, strings.Join(fields, ", "))
			}
		}
		switch o.Kind {
		case "gpio", "pwm":
			checkPin(p, at, o.Pin)
			usePin(at+".pin", o.Pin, "output "+name)
			if o.PWMHz < 0 || o.PWMHz > 100000 {
				p.Addf(at+".pwm_hz", "%d Hz is out of range; expected 1-100000", o.PWMHz)
			}
		case "ws2812", "apa102":
			if o.SPI == "" {
				p.Addf(at, "missing spi: the SPI port the strip's data line is on (e.g. spi: SPI0.0)")
			}
			if o.LEDs < 1 || o.LEDs > 2000 {
				p.Addf(at+".leds", "%d LEDs: expected the strip's LED count, 1-2000", o.LEDs)
			}
			if o.Color != "" {
				if _, _, _, err := cue.ParseColor(o.Color); err != nil {
					p.Addf(at+".color", "%v", err)
				}
			}
		case "drv2605":
			if o.I2C == "" {
				p.Addf(at, "missing i2c: the I2C bus the DRV2605L is on (e.g. i2c: \"1\")")
			}
			switch o.Actuator {
			case "", "erm", "lra":
			default:
				p.Addf(at+".actuator", "unknown actuator %q; expected erm (a coin or pager motor) or lra", o.Actuator)
			}
			if o.Library < 0 || o.Library > 7 {
				p.Addf(at+".library", "library %d; expected 1-7", o.Library)
			}
		case "wled", "tasmota", "shelly", "z2m":
			if o.Topic == "" {
				p.Addf(at, "missing topic: the device's MQTT topic (e.g. topic: wled/stage)")
			} else if err := topic.ValidName(o.Topic); err != nil {
				p.Addf(at+".topic", "%q: %v", o.Topic, err)
			}
			if o.Channel < 0 {
				p.Addf(at+".channel", "channel %d; expected 0 or more", o.Channel)
			}
			if o.Base != "" && topic.ValidName(o.Base) != nil {
				p.Addf(at+".base", "%q is not a topic", o.Base)
			}
		case "wearable":
			if o.ID != "" && !nameRE.MatchString(o.ID) {
				p.Addf(at+".id", "wearable id %q: expected 1-32 lower-case letters, digits, '_' or '-'", o.ID)
			}
			if o.AckTimeout != 0 && (o.AckTimeout < 100*time.Millisecond || o.AckTimeout > 30*time.Second) {
				p.Addf(at+".ack_timeout", "%v: expected 100ms-30s (default 2s)", o.AckTimeout)
			}
			if f := o.Fallback; f != "" {
				switch _, ok := c.Outputs[f]; {
				case f == name:
					p.Addf(at+".fallback", "an output cannot be its own fallback")
				case !ok:
					p.Addf(at+".fallback", "no output named %q; expected one of: %s", f, strings.Join(sortedKeys(c.Outputs), ", "))
				}
			}
		}
	}
	c.checkCycles(p)
	for _, name := range sortedKeys(c.Buttons) {
		b := c.Buttons[name]
		at := "buttons." + name
		if !nameRE.MatchString(name) {
			p.Addf(at, "button name %q: expected 1-32 lower-case letters, digits, '_' or '-' (events are button/<name>/press)", name)
		}
		checkPin(p, at, b.Pin)
		usePin(at+".pin", b.Pin, "button "+name)
		switch b.Pull {
		case "", "up", "down", "none":
		default:
			p.Addf(at+".pull", "unknown pull %q; expected up (button to ground), down (button to 3.3 V) or none", b.Pull)
		}
		if b.Debounce < 0 || b.Debounce > time.Second {
			p.Addf(at+".debounce", "%v: expected 0-1s (default 30ms)", b.Debounce)
		}
	}
}

func checkPin(p *confutil.Problems, at, pin string) {
	switch {
	case pin == "":
		p.Addf(at, "missing pin: a logical name from pins: (e.g. cue_lamp) or a line (e.g. GPIO17)")
	case !pinRE.MatchString(pin):
		p.Addf(at+".pin", "%q: expected a logical name (e.g. cue_lamp) or a line name (e.g. GPIO17)", pin)
	}
}

// checkCycles reports fallback chains that come back on themselves
// (a → b → a): a silent wearable would hand its cue round forever.
func (c *Config) checkCycles(p *confutil.Problems) {
	reported := map[string]bool{}
	for _, start := range sortedKeys(c.Outputs) {
		seen := map[string]int{}
		var chain []string
		for n := start; n != ""; n = c.Outputs[n].Fallback {
			if _, ok := c.Outputs[n]; !ok || n == c.Outputs[n].Fallback {
				break // reported as unknown / self
			}
			if i, ok := seen[n]; ok {
				cycle := chain[i:]
				key := minOf(cycle)
				if !reported[key] {
					reported[key] = true
					p.Addf("outputs."+key+".fallback", "fallback cycle: %s → %s; a fallback chain must end at an output without a fallback",
						strings.Join(rotate(cycle, key), " → "), key)
				}
				break
			}
			seen[n] = len(chain)
			chain = append(chain, n)
		}
	}
}

func minOf(s []string) string {
	m := s[0]
	for _, x := range s {
		if x < m {
			m = x
		}
	}
	return m
}

func rotate(s []string, first string) []string {
	for i, x := range s {
		if x == first {
			return append(append([]string{}, s[i:]...), s[:i]...)
		}
	}
	return s
}

func contains(s []string, x string) bool {
	for _, y := range s {
		if y == x {
			return true
		}
	}
	return false
}
