package outputs

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"periph.io/x/conn/v3/gpio"

	"fieldkit/drivers/cue"
	"fieldkit/drivers/outputs/kind"
	"fieldkit/internal/confutil"
)

// buzzer is a kind written the way a new kind is: its own config type,
// Validate and Build. Registering it is one line in the registry.
type buzzer struct {
	Pin    string `yaml:"pin"`
	ToneHz int    `yaml:"tone_hz"`
}

func (c *buzzer) Pins() []string { return []string{c.Pin} }

func (c *buzzer) Validate(p *confutil.Problems) {
	kind.CheckPin(p, "", c.Pin)
	if c.ToneHz < 20 || c.ToneHz > 20000 {
		p.Addf("tone_hz", "%d Hz: expected an audible tone, 20-20000", c.ToneHz)
	}
}

func (c *buzzer) Build(name string, env kind.Env) (cue.Target, error) {
	pin, err := env.Board.Pin(c.Pin)
	if err != nil {
		return nil, err
	}
	return &buzzerTarget{name: name, kind: env.Kind, pin: pin}, nil
}

type buzzerTarget struct {
	name, kind string
	pin        gpio.PinIO
	on         bool
}

func (t *buzzerTarget) Name() string { return t.name }
func (t *buzzerTarget) Kind() string { return t.kind }
func (t *buzzerTarget) Check(a cue.Action) error {
	if a.Do != cue.On && a.Do != cue.Off {
		return fmt.Errorf("a buzzer only turns on and off, not %q", a.Do)
	}
	return nil
}
func (t *buzzerTarget) Apply(_ context.Context, a cue.Action) error {
	t.on = a.Do == cue.On
	return t.pin.Out(gpio.Level(t.on))
}
func (t *buzzerTarget) State() any   { return map[string]bool{"on": t.on} }
func (t *buzzerTarget) Close() error { return nil }

// A new kind is decoded strictly into its own type, validated, checked
// against the other outputs' pins and built, with nothing but its
// registration line added.
func TestAddingAKind(t *testing.T) {
	saved := registry
	t.Cleanup(func() { registry = saved; Kinds = kindNames() })
	registry = append(slices.Clone(registry), struct {
		name string
		new  func() kind.Config
	}{"buzzer", func() kind.Config { return &buzzer{} }})
	Kinds = kindNames()

	y := "outputs:\n  beep: {kind: buzzer, pin: GPIO5, tone_hz: 2000}\n  lamp: {kind: gpio, pin: GPIO6}\n"
	c, _, err := decode(t, y)
	if err != nil {
		t.Fatal(err)
	}
	if b, ok := c.Outputs["beep"].Config.(*buzzer); !ok || b.ToneHz != 2000 || b.Pin != "GPIO5" {
		t.Fatalf("decoded %#v", c.Outputs["beep"])
	}
	bd := newBoard()
	targets, _, err := Build(*c, Deps{Board: bd})
	if err != nil {
		t.Fatal(err)
	}
	defer CloseAll(targets)
	if err := targets["beep"].Apply(t.Context(), cue.Action{Do: cue.On}); err != nil {
		t.Fatal(err)
	}
	if l := bd.pins["GPIO5"].Read(); l != gpio.High {
		t.Fatalf("buzzer pin is %v", l)
	}

	for _, tc := range []struct{ yaml, want string }{
		{"outputs:\n  beep: {kind: buzzer, pin: GPIO5, tone_hz: 5}\n", "agent.yaml:2: outputs.beep.tone_hz: 5 Hz"},
		{"outputs:\n  beep:\n    kind: buzzer\n    pin: GPIO5\n    tone_hz: 440\n    leds: 3\n",
			"agent.yaml:6: outputs.beep.leds: leds is not used by kind buzzer (its fields: pin, tone_hz)"},
		{"outputs:\n  beep: {kind: buzzer, pin: GPIO5, tone_hz: 440}\n  lamp: {kind: gpio, pin: GPIO5}\n", `pin "GPIO5" is already used by output beep`},
		{"outputs:\n  x: {kind: laser}\n", "expected one of: gpio, pwm, ws2812, apa102, drv2605, wled, tasmota, shelly, z2m, wearable, buzzer"},
	} {
		if got := validate(t, tc.yaml); !strings.Contains(got, tc.want) {
			t.Errorf("%s\ngot:  %s\nwant: %s", tc.yaml, got, tc.want)
		}
	}
}

// Every registered kind decodes into a config of its own type and builds
// for checking, and its keys are each decoded into its type (a key it
// lists but does not read would be silently dropped).
func TestRegistry(t *testing.T) {
	seen := map[string]bool{}
	for _, k := range registry {
		if seen[k.name] {
			t.Errorf("kind %s registered twice", k.name)
		}
		seen[k.name] = true
		a, b := k.new(), k.new()
		if a == b {
			t.Errorf("kind %s: new returns the same config twice", k.name)
		}
		if len(confutil.KeysOf(a)) == 0 {
			t.Errorf("kind %s: its config has no keys", k.name)
		}
	}
	// Built for checking, every kind makes a target that names its kind.
	var y strings.Builder
	y.WriteString("outputs:\n")
	ex := map[string]string{
		"gpio": "pin: GPIO5", "pwm": "pin: GPIO6", "ws2812": "spi: SPI0.0, leds: 3", "apa102": "spi: SPI0.1, leds: 3",
		"drv2605": "i2c: '1'", "wled": "topic: w", "tasmota": "topic: t", "shelly": "topic: s", "z2m": "topic: z", "wearable": "id: anna",
	}
	for _, k := range Kinds {
		fmt.Fprintf(&y, "  o_%s: {kind: %s, %s}\n", k, k, ex[k])
	}
	c, _, err := decode(t, y.String())
	if err != nil {
		t.Fatal(err)
	}
	targets, _, err := Build(*c, Deps{CheckOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer CloseAll(targets)
	for _, k := range Kinds {
		if tg := targets["o_"+k]; tg == nil || tg.Kind() != k {
			t.Errorf("kind %s built %v", k, tg)
		}
	}
}

// The outputs decoder never panics, and what it accepts has a config of
// the entry's kind exactly when the kind is registered.
func FuzzDecodeOutputs(f *testing.F) {
	f.Add(example)
	f.Add("outputs:\n  lamp:\n    kind: gpio\n    pin: GPIO5\n    leds: 30\n")
	f.Add("outputs:\n  x: {kind: laser, pin: 3}\n")
	f.Add("outputs: [1, 2]\n")
	f.Add("outputs:\n  a: &a {kind: wled, topic: t}\n  b: *a\n")
	f.Add("outputs:\n  w: {kind: wearable, ack_timeout: soon, id: [1]}\n")
	f.Add("outputs:\n  k: {kind: {x: 1}}\n")
	f.Fuzz(func(t *testing.T, y string) {
		var c Config
		doc, err := confutil.Decode("agent.yaml", []byte(y), &c)
		if err != nil {
			return
		}
		for name, o := range c.Outputs {
			if (o.Config == nil) != (newConfig(o.Kind) == nil) {
				t.Fatalf("output %s of kind %q decoded to %#v", name, o.Kind, o.Config)
			}
		}
		p := confutil.NewProblems()
		c.Validate(p)
		_ = doc.Err(p)
	})
}
