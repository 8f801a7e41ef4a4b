package outputs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/i2c/i2ctest"
	"periph.io/x/conn/v3/spi"
	"periph.io/x/conn/v3/spi/spitest"

	"fieldkit/drivers/cue"
	"fieldkit/drivers/outputs/mqttdevice"
	"fieldkit/internal/bus"
	"fieldkit/internal/clock"
	"fieldkit/internal/confutil"
	"fieldkit/internal/mqttc"
)

const example = `
outputs:
  cue_lamp:  {kind: gpio, pin: cue_lamp, active_low: true}
  desk_buzz: {kind: pwm, pin: GPIO18}
  bar:       {kind: ws2812, spi: SPI0.0, leds: 30}
  puck:      {kind: drv2605, i2c: "1", actuator: erm}
  stage:     {kind: wled, topic: wled/stage}
  plug:      {kind: tasmota, topic: stage-plug}
  relay:     {kind: shelly, topic: shellyplus1-a8032ab12345, channel: 0}
  bulb:      {kind: z2m, topic: desk_bulb}
  presenter: {kind: wearable, id: anna, fallback: cue_lamp}
buttons:
  go: {pin: GPIO27, pull: up, debounce: 30ms}
`

func decode(t *testing.T, y string) (*Config, *confutil.Doc, error) {
	t.Helper()
	var c Config
	doc, err := confutil.Decode("agent.yaml", []byte(y), &c)
	if err != nil {
		return nil, nil, err
	}
	return &c, doc, nil
}

// validate decodes y and returns the "file:line: path: message" lines.
func validate(t *testing.T, y string) string {
	t.Helper()
	c, doc, err := decode(t, y)
	if err != nil {
		return err.Error()
	}
	p := confutil.NewProblems()
	c.Validate(p)
	if err := doc.Err(p); err != nil {
		return err.Error()
	}
	return ""
}

// What an MQTT device kind can do is accepted at config check: colour
// on a Tasmota RGB bulb, flash on a Zigbee bulb that exposes blink.
func TestMQTTKindsAcceptWhatTheyCanDo(t *testing.T) {
	c, _, err := decode(t, "outputs:\n  bulb: {kind: tasmota, topic: t, channel: 2}\n  hue: {kind: z2m, topic: z, effects: [blink, breathe], deadline: 300ms}\n  plain: {kind: z2m, topic: p}\n")
	if err != nil {
		t.Fatal(err)
	}
	targets, _, err := Build(*c, Deps{CheckOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer CloseAll(targets)
	if err := targets["bulb"].Check(cue.Action{Do: cue.Color, Color: "#ff0000"}); err != nil {
		t.Errorf("tasmota colour: %v", err)
	}
	if err := targets["hue"].Check(cue.Action{Do: cue.Effect, Effect: "flash"}); err != nil {
		t.Errorf("z2m flash with blink exposed: %v", err)
	}
	if err := targets["plain"].Check(cue.Action{Do: cue.Effect, Effect: "flash"}); err == nil || !strings.Contains(err.Error(), "effects:") {
		t.Errorf("z2m flash without blink exposed: %v", err)
	}
}

// lead: is read by every MQTT device kind, as a duration or auto.
func TestMQTTKindsReadLead(t *testing.T) {
	c, _, err := decode(t, "outputs:\n  a: {kind: wled, topic: a, lead: 120ms}\n  b: {kind: tasmota, topic: b, lead: auto}\n"+
		"  c: {kind: shelly, topic: c, lead: 0s}\n  d: {kind: z2m, topic: d, lead: 40ms}\n")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]cue.Lead{"a": {Fixed: 120 * time.Millisecond}, "b": {Auto: true}, "c": {}, "d": {Fixed: 40 * time.Millisecond}}
	for name, w := range want {
		var got cue.Lead
		switch k := c.Outputs[name].Config.(type) {
		case *mqttdevice.WLED:
			got = k.Lead
		case *mqttdevice.Tasmota:
			got = k.Lead
		case *mqttdevice.Shelly:
			got = k.Lead
		case *mqttdevice.Z2M:
			got = k.Lead
		}
		if got != w {
			t.Errorf("%s: lead %v, want %v", name, got, w)
		}
	}
}

func TestExampleIsValid(t *testing.T) {
	if got := validate(t, example); got != "" {
		t.Fatal(got)
	}
}

func TestValidateRefuses(t *testing.T) {
	cases := []struct {
		name, yaml, want string
	}{
		{"unknown kind", "outputs:\n  lamp: {kind: laser, pin: GPIO5}\n",
			`agent.yaml:2: outputs.lamp.kind: unknown kind "laser"; expected one of: gpio, pwm, ws2812`},
		{"missing kind", "outputs:\n  lamp: {pin: GPIO5}\n", "agent.yaml:2: outputs.lamp: missing kind"},
		{"missing pin", "outputs:\n  lamp:\n    kind: gpio\n", "agent.yaml:3: outputs.lamp: missing pin"},
		{"bad pin", "outputs:\n  lamp: {kind: gpio, pin: 'pin 5'}\n", `outputs.lamp.pin: "pin 5": expected a logical name`},
		{"field of another kind", "outputs:\n  lamp:\n    kind: gpio\n    pin: GPIO5\n    leds: 30\n",
			"agent.yaml:5: outputs.lamp.leds: leds is not used by kind gpio (its fields: pin, active_low, pwm_hz, soft_pwm)"},
		{"unknown key", "outputs:\n  lamp:\n    kind: gpio\n    pinn: GPIO5\n", `agent.yaml:4: unknown key "pinn" in outputs.lamp; expected one of:`},
		{"bad fallback", "outputs:\n  w:\n    kind: wearable\n    fallback: lamp\n",
			`agent.yaml:4: outputs.w.fallback: no output named "lamp"; expected one of: w`},
		{"self fallback", "outputs:\n  w: {kind: wearable, fallback: w}\n", "outputs.w.fallback: an output cannot be its own fallback"},
		{"fallback cycle", "outputs:\n  anna: {kind: wearable, fallback: bob}\n  bob: {kind: wearable, fallback: cara}\n  cara: {kind: wearable, fallback: anna}\n",
			"agent.yaml:2: outputs.anna.fallback: fallback cycle: anna → bob → cara → anna"},
		{"strip without leds", "outputs:\n  bar: {kind: apa102, spi: SPI0.0}\n", "outputs.bar.leds: 0 LEDs"},
		{"strip without spi", "outputs:\n  bar: {kind: ws2812, leds: 8}\n", "outputs.bar: missing spi"},
		{"bad colour", "outputs:\n  bar: {kind: ws2812, spi: SPI0.0, leds: 8, color: red}\n", `color "red": expected #rrggbb`},
		{"mqtt without topic", "outputs:\n  plug: {kind: tasmota}\n", "outputs.plug: missing topic"},
		{"wildcard topic", "outputs:\n  plug: {kind: tasmota, topic: 'a/#'}\n", `outputs.plug.topic: "a/#"`},
		{"deadline", "outputs:\n  bulb: {kind: z2m, topic: b, deadline: 10ms}\n", "outputs.bulb.deadline: 10ms: expected 50ms-30s"},
		{"lead", "outputs:\n  bulb: {kind: z2m, topic: b, lead: soon}\n", `lead "soon": expected a duration such as 120ms, or auto`},
		{"lead range", "outputs:\n  bulb: {kind: wled, topic: b, lead: 5s}\n", "lead 5s: expected 0-2s, or auto"},
		{"tasmota relay", "outputs:\n  plug: {kind: tasmota, topic: p, channel: 33}\n", "outputs.plug.channel: channel 33; expected 1-32"},
		{"z2m effect", "outputs:\n  bulb: {kind: z2m, topic: b, effects: [blink, 'a/b']}\n", `outputs.bulb.effects[1]: "a/b": expected an effect value`},
		{"bad actuator", "outputs:\n  puck: {kind: drv2605, i2c: '1', actuator: piezo}\n", `unknown actuator "piezo"`},
		{"ack timeout", "outputs:\n  w: {kind: wearable, ack_timeout: 1ms}\n", "outputs.w.ack_timeout: 1ms: expected 100ms-30s"},
		{"shared pin", "outputs:\n  a: {kind: gpio, pin: GPIO5}\nbuttons:\n  go: {pin: GPIO5}\n",
			`agent.yaml:4: buttons.go.pin: pin "GPIO5" is already used by output a`},
		{"button pull", "buttons:\n  go: {pin: GPIO6, pull: sideways}\n", `buttons.go.pull: unknown pull "sideways"`},
		{"button without pin", "buttons:\n  go: {pull: up}\n", "buttons.go: missing pin"},
		{"bad name", "outputs:\n  Cue Lamp: {kind: gpio, pin: GPIO5}\n", `output name "Cue Lamp"`},
		{"duration type", "buttons:\n  go: {pin: GPIO6, debounce: soon}\n", `"soon" is text, expected a duration`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := validate(t, c.yaml)
			if !strings.Contains(got, c.want) {
				t.Fatalf("got:\n%s\nwant it to contain:\n%s", got, c.want)
			}
		})
	}
}

// board is a sim board: gpiotest pins by name, an i2ctest DRV2605L on
// bus "1", recorded SPI ports.
type board struct {
	mu   sync.Mutex
	pins map[string]*gpiotest.Pin
	spis map[string]*spitest.Record
	i2c  *i2ctest.Playback
}

func newBoard() *board {
	return &board{pins: map[string]*gpiotest.Pin{}, spis: map[string]*spitest.Record{},
		i2c: &i2ctest.Playback{DontPanic: true, Ops: []i2ctest.IO{
			{Addr: 0x5A, W: []byte{0x00}, R: []byte{0xE0}},
			{Addr: 0x5A, W: []byte{0x01, 0x00}},
			{Addr: 0x5A, W: []byte{0x03, 0x01}},
			{Addr: 0x5A, W: []byte{0x1A}, R: []byte{0x36}},
			{Addr: 0x5A, W: []byte{0x1D}, R: []byte{0xA0}},
			{Addr: 0x5A, W: []byte{0x1A, 0x36}},
			{Addr: 0x5A, W: []byte{0x1D, 0xA0}},
		}}}
}

var logical = map[string]string{"cue_lamp": "GPIO17"}

func (b *board) Pin(name string) (gpio.PinIO, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if l, ok := logical[name]; ok {
		name = l
	}
	if !strings.HasPrefix(name, "GPIO") {
		return nil, fmt.Errorf("board has no pin called %q", name)
	}
	if p, ok := b.pins[name]; ok {
		return p, nil
	}
	p := &gpiotest.Pin{N: name, EdgesChan: make(chan gpio.Level)}
	b.pins[name] = p
	return p, nil
}

func (b *board) I2C(name string) (i2c.Bus, error) {
	if name != "1" {
		return nil, fmt.Errorf("no I2C bus %q", name)
	}
	return b.i2c, nil
}

func (b *board) SPI(name string) (spi.PortCloser, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := &spitest.Record{}
	b.spis[name] = r
	return r, nil
}

type fakeMQTT struct {
	mu   sync.Mutex
	pubs []string
}

func (f *fakeMQTT) Prefix() string { return "fieldkit/box1" }
func (f *fakeMQTT) Publish(_ context.Context, t string, _ byte, _ bool, p []byte) error {
	f.mu.Lock()
	f.pubs = append(f.pubs, t+" "+string(p))
	f.mu.Unlock()
	return nil
}
func (f *fakeMQTT) Handle(string, mqttc.Handler) error { return nil }
func (f *fakeMQTT) OnConnect(func())                   {}
func (f *fakeMQTT) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.pubs)
}

func TestBuildExample(t *testing.T) {
	c, _, err := decode(t, example)
	if err != nil {
		t.Fatal(err)
	}
	bd := newBoard()
	clk := clock.NewFake(time.Unix(0, 0))
	bs := bus.New(nil)
	alerts := bs.Subscribe("cue/+/alert", 4)
	mq := &fakeMQTT{}
	targets, buttons, err := Build(*c, Deps{Board: bd, MQTT: mq, Bus: bs, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	defer CloseAll(targets)
	kinds := map[string]string{}
	for n, tg := range targets {
		if tg.Name() != n {
			t.Errorf("target %q calls itself %q", n, tg.Name())
		}
		kinds[n] = tg.Kind()
	}
	want := map[string]string{"cue_lamp": "gpio", "desk_buzz": "pwm", "bar": "ws2812", "puck": "drv2605", "stage": "wled",
		"plug": "tasmota", "relay": "shelly", "bulb": "z2m", "presenter": "wearable"}
	if fmt.Sprint(kinds) != fmt.Sprint(want) {
		t.Fatalf("kinds %v\nwant  %v", kinds, want)
	}
	if len(buttons) != 1 || buttons[0].Name() != "go" || bd.pins["GPIO27"].P != gpio.PullUp {
		t.Fatalf("buttons %v", buttons)
	}
	// The lamp is active low: off is high.
	lamp := bd.pins["GPIO17"]
	if lamp.Read() != gpio.High {
		t.Fatal("active-low lamp not off after build")
	}
	// The presenter's wearable is silent: after two sends and 4 s the
	// cue lamp plays the pattern and an alert goes out.
	if err := targets["presenter"].Apply(context.Background(), cue.Action{Do: cue.Haptic, Pattern: "long"}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if !clk.WaitForTimers(1, 5*time.Second) {
			t.Fatal("wearable is not waiting for its ack")
		}
		clk.Advance(2 * time.Second)
	}
	select {
	case ev := <-alerts.C():
		if ev.Topic != "cue/anna/alert" {
			t.Fatalf("alert on %s", ev.Topic)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no alert")
	}
	if lamp.Read() != gpio.Low {
		t.Fatal("the fallback lamp did not light")
	}
	if mq.count() != 2 {
		t.Fatalf("%d MQTT publishes, want the cue twice", mq.count())
	}
}

func TestBuildFailureClosesWhatWasBuilt(t *testing.T) {
	c, _, err := decode(t, "outputs:\n  a_lamp: {kind: gpio, pin: GPIO5}\n  b_lamp: {kind: gpio, pin: stage_left}\n")
	if err != nil {
		t.Fatal(err)
	}
	bd := newBoard()
	_, _, err = Build(*c, Deps{Board: bd})
	if err == nil || !strings.Contains(err.Error(), `output b_lamp: board has no pin called "stage_left"`) {
		t.Fatalf("got %v", err)
	}
	if bd.pins["GPIO5"].Read() != gpio.Low {
		t.Fatal("a_lamp left on")
	}
	// MQTT kinds without a connection, and an invalid config.
	c, _, _ = decode(t, "outputs:\n  stage: {kind: wled, topic: wled/stage}\n")
	if _, _, err := Build(*c, Deps{}); err == nil || !strings.Contains(err.Error(), "needs the MQTT connection") {
		t.Fatalf("got %v", err)
	}
	c, _, _ = decode(t, "outputs:\n  stage: {kind: wled}\n")
	if _, _, err := Build(*c, Deps{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("got %v", err)
	}
}

func FuzzConfig(f *testing.F) {
	f.Add(example)
	f.Add("outputs:\n  a: {kind: wearable, fallback: b}\n  b: {kind: wearable, fallback: a}\n")
	f.Add("buttons:\n  go: {pin: GPIO6, debounce: 2s}\n")
	f.Add("outputs: [1, 2]\n")
	f.Fuzz(func(t *testing.T, y string) {
		var c Config
		doc, err := confutil.Decode("f.yaml", []byte(y), &c)
		if err != nil {
			return
		}
		p := confutil.NewProblems()
		c.Validate(p)
		_ = doc.Err(p)
	})
}

// BenchmarkStepOfTwelve is one scene step: twelve outputs of mixed kinds
// each given an action, back to back, as the engine dispatches them.
func BenchmarkStepOfTwelve(b *testing.B) {
	y := "outputs:\n"
	for i := 0; i < 6; i++ {
		y += fmt.Sprintf("  lamp%d: {kind: gpio, pin: GPIO%d}\n", i, 5+i)
	}
	for i := 0; i < 3; i++ {
		y += fmt.Sprintf("  bar%d: {kind: ws2812, spi: SPI%d.0, leds: 30}\n", i, i)
	}
	for i := 0; i < 3; i++ {
		y += fmt.Sprintf("  wled%d: {kind: wled, topic: wled/%d}\n", i, i)
	}
	var c Config
	if _, err := confutil.Decode("b.yaml", []byte(y), &c); err != nil {
		b.Fatal(err)
	}
	targets, _, err := Build(c, Deps{Board: newBoard(), MQTT: &fakeMQTT{}})
	if err != nil {
		b.Fatal(err)
	}
	defer CloseAll(targets)
	list := make([]cue.Target, 0, len(targets))
	for _, t := range targets {
		list = append(list, t)
	}
	acts := []cue.Action{{Do: cue.On}, {Do: cue.Blink, Period: time.Second, Count: 3}, {Do: cue.Off}}
	for i := 0; b.Loop(); i++ {
		a := acts[i%len(acts)]
		for _, t := range list {
			if err := t.Apply(context.Background(), a); err != nil {
				b.Fatal(err)
			}
		}
	}
}
