package outputs

import (
	"sort"
	"strings"
	"time"

	"fieldkit/drivers/outputs/kind"
	"fieldkit/internal/confutil"
)

// Config is the outputs: and buttons: sections of the agent's file. It
// is inlined in the top-level config, so both keys sit at the top.
type Config struct {
	Outputs Outputs           `yaml:"outputs"`
	Buttons map[string]Button `yaml:"buttons"`
}

// Outputs are the outputs by name. Each entry is decoded strictly into
// its kind's own config type (see registry).
type Outputs map[string]Output

// Output is one named output.
type Output struct {
	Kind string
	// Config holds the entry's other keys, of the kind's own type; nil
	// when Kind names no kind (Validate reports that).
	Config kind.Config
}

// Button is one named push button.
type Button struct {
	Pin        string        `yaml:"pin"`
	Pull       string        `yaml:"pull"` // up (default), down, none
	ActiveHigh bool          `yaml:"active_high"`
	Debounce   time.Duration `yaml:"debounce"`
}

var nameRE = kind.NameRE

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
		if o.Config == nil {
			if o.Kind == "" {
				p.Addf(at, "missing kind; expected one of: %s", strings.Join(Kinds, ", "))
			} else {
				p.Addf(at+".kind", "unknown kind %q; expected one of: %s", o.Kind, strings.Join(Kinds, ", "))
			}
			continue
		}
		o.Config.Validate(p.At(at))
		if pu, ok := o.Config.(kind.PinUser); ok {
			for _, pin := range pu.Pins() {
				usePin(at+".pin", pin, "output "+name)
			}
		}
		if f := fallbackOf(o); f != "" {
			switch _, ok := c.Outputs[f]; {
			case f == name:
				p.Addf(at+".fallback", "an output cannot be its own fallback")
			case !ok:
				p.Addf(at+".fallback", "no output named %q; expected one of: %s", f, strings.Join(sortedKeys(c.Outputs), ", "))
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
		kind.CheckPin(p, at, b.Pin)
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

// fallbackOf is the output o hands its cues to, if any.
func fallbackOf(o Output) string {
	if r, ok := o.Config.(kind.Referrer); ok {
		return r.Refers()
	}
	return ""
}

// checkCycles reports fallback chains that come back on themselves
// (a → b → a): a silent wearable would hand its cue round forever.
func (c *Config) checkCycles(p *confutil.Problems) {
	reported := map[string]bool{}
	for _, start := range sortedKeys(c.Outputs) {
		seen := map[string]int{}
		var chain []string
		for n := start; n != ""; n = fallbackOf(c.Outputs[n]) {
			if _, ok := c.Outputs[n]; !ok || n == fallbackOf(c.Outputs[n]) {
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
