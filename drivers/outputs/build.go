package outputs

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/spi"

	"fieldkit/drivers/button"
	"fieldkit/drivers/cue"
	"fieldkit/drivers/drv2605"
	"fieldkit/drivers/gpioout"
	"fieldkit/drivers/ledstrip"
	"fieldkit/drivers/mqttdev"
	"fieldkit/internal/clock"
	"fieldkit/internal/confutil"
)

// Board hands out the hardware by name (the agent's board profile).
type Board interface {
	// Pin resolves a logical name (cue_lamp) or a line (GPIO17).
	Pin(name string) (gpio.PinIO, error)
	I2C(bus string) (i2c.Bus, error)
	SPI(port string) (spi.PortCloser, error)
}

// Events is the agent's in-process bus (internal/bus.Bus), as far as
// the buttons and wearables use it.
type Events interface {
	Publish(topic string, payload []byte)
}

// Deps is what Build needs from the agent.
type Deps struct {
	Board Board
	// MQTT is the agent's connection; required only by MQTT kinds.
	MQTT mqttdev.Conn
	// Bus receives the buttons' and wearables' events.
	Bus   Events
	Clock clock.Clock
	Log   *slog.Logger
	// Metrics records confirmations, misses and publish failures (nil: none).
	Metrics *cue.Metrics
	// CheckOnly builds targets only to check scene files against them
	// (config check): no hardware is opened, no chip is probed, nothing is
	// sent over MQTT, and no buttons are made. Board and MQTT are ignored.
	// Such targets must never be applied.
	CheckOnly bool
}

// ErrInvalid is returned by Build for a config that does not validate.
var ErrInvalid = errors.New("outputs: invalid configuration")

// Build makes every output and button in cfg. On error, whatever was
// already built is closed again. The buttons must be Run by the caller.
func Build(cfg Config, d Deps) (map[string]cue.Target, []*button.Button, error) {
	p := confutil.NewProblems()
	cfg.Validate(p)
	if !p.Empty() {
		pr := p.List()[0]
		return nil, nil, fmt.Errorf("%w: %s: %s", ErrInvalid, pr.Path, pr.Msg)
	}
	if d.Clock == nil {
		d.Clock = clock.Real()
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	if d.CheckOnly {
		d.Board, d.MQTT = checkBoard{}, checkConn{}
	}
	b := &builder{cfg: cfg, d: d, out: map[string]cue.Target{}}
	for _, name := range sortedKeys(cfg.Outputs) {
		if _, err := b.output(name); err != nil {
			CloseAll(b.out)
			return nil, nil, err
		}
	}
	if d.CheckOnly {
		return b.out, nil, nil
	}
	var buttons []*button.Button
	for _, name := range sortedKeys(cfg.Buttons) {
		bc := cfg.Buttons[name]
		btn, err := b.button(name, bc)
		if err != nil {
			CloseAll(b.out)
			for _, x := range buttons {
				x.Halt()
			}
			return nil, nil, fmt.Errorf("button %s: %w", name, err)
		}
		buttons = append(buttons, btn)
	}
	return b.out, buttons, nil
}

// CloseAll closes every target, returning the first error.
func CloseAll(targets map[string]cue.Target) error {
	var first error
	names := make([]string, 0, len(targets))
	for n := range targets {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := targets[n].Close(); err != nil && first == nil {
			first = fmt.Errorf("output %s: %w", n, err)
		}
	}
	return first
}

type builder struct {
	cfg Config
	d   Deps
	out map[string]cue.Target
}

// output builds name once, after its fallback (Validate ruled out cycles).
func (b *builder) output(name string) (cue.Target, error) {
	if t, ok := b.out[name]; ok {
		return t, nil
	}
	t, err := b.make(name, b.cfg.Outputs[name])
	if err != nil {
		return nil, fmt.Errorf("output %s: %w", name, err)
	}
	b.out[name] = t
	return t, nil
}

func (b *builder) make(name string, o Output) (cue.Target, error) {
	log := b.d.Log
	switch o.Kind {
	case "gpio", "pwm":
		pin, err := b.board().Pin(o.Pin)
		if err != nil {
			return nil, err
		}
		return gpioout.New(pin, &gpioout.Opts{Name: name, Kind: o.Kind, ActiveLow: o.ActiveLow,
			Freq: physic.Frequency(o.PWMHz) * physic.Hertz, SoftPWM: o.SoftPWM, Clock: b.d.Clock, Log: log})
	case "ws2812", "apa102":
		port, err := b.board().SPI(o.SPI)
		if err != nil {
			return nil, err
		}
		so := &ledstrip.Opts{Name: name, NumPixels: o.LEDs, Color: o.Color, Clock: b.d.Clock, Log: log}
		var s *ledstrip.Strip
		if o.Kind == "ws2812" {
			s, err = ledstrip.NewWS2812(port, so)
		} else {
			s, err = ledstrip.NewAPA102(port, so)
		}
		if err != nil {
			port.Close()
			return nil, err
		}
		return &closing{Target: s, c: port}, nil
	case "drv2605":
		if b.d.CheckOnly {
			// What the chip can play is known without asking it.
			return checkTarget{drv2605.NewTarget(name, nil, log)}, nil
		}
		bus, err := b.board().I2C(o.I2C)
		if err != nil {
			return nil, err
		}
		do := drv2605.DefaultOpts
		do.Library = uint8(o.Library) // 0: the actuator's usual library
		if o.Actuator == "lra" {
			do.Actuator = drv2605.LRA
		}
		dev, err := drv2605.New(bus, &do)
		if err != nil {
			return nil, err
		}
		return drv2605.NewTarget(name, dev, log), nil
	case "wled", "tasmota", "shelly", "z2m":
		if b.d.MQTT == nil {
			return nil, errors.New("an MQTT device needs the MQTT connection (mqtt: in the config)")
		}
		return mqttdev.NewDevice(b.d.MQTT, &mqttdev.Opts{Name: name, Kind: mqttdev.Kind(o.Kind), Topic: o.Topic,
			Channel: o.Channel, Dimmable: o.Dimmable, Base: o.Base, Clock: b.d.Clock, Log: log, Metrics: b.d.Metrics})
	case "wearable":
		if b.d.MQTT == nil {
			return nil, errors.New("a wearable needs the MQTT connection (mqtt: in the config)")
		}
		var fb cue.Target
		if o.Fallback != "" {
			var err error
			if fb, err = b.output(o.Fallback); err != nil {
				return nil, err
			}
		}
		return mqttdev.NewWearable(b.d.MQTT, &mqttdev.WearableOpts{Name: name, ID: o.ID, Fallback: fb,
			AckTimeout: o.AckTimeout, Bus: b.d.Bus, Clock: b.d.Clock, Log: log, Metrics: b.d.Metrics})
	}
	return nil, fmt.Errorf("unknown kind %q", o.Kind)
}

func (b *builder) board() Board {
	if b.d.Board == nil {
		return noBoard{}
	}
	return b.d.Board
}

func (b *builder) button(name string, c Button) (*button.Button, error) {
	pin, err := b.board().Pin(c.Pin)
	if err != nil {
		return nil, err
	}
	o := &button.Opts{Name: name, Pull: gpio.PullUp, ActiveHigh: c.ActiveHigh, Debounce: c.Debounce,
		Bus: b.d.Bus, Clock: b.d.Clock, Log: b.d.Log}
	switch c.Pull {
	case "down":
		o.Pull = gpio.PullDown
	case "none":
		o.Pull = gpio.Float
	}
	return button.New(pin, o)
}

// closing closes the SPI port the strip owns after the strip.
type closing struct {
	cue.Target
	c io.Closer
}

func (c *closing) Close() error {
	err := c.Target.Close()
	if cerr := c.c.Close(); err == nil {
		err = cerr
	}
	return err
}

type noBoard struct{}

var errNoBoard = errors.New("no board: hardware outputs need a board profile")

func (noBoard) Pin(string) (gpio.PinIO, error)     { return nil, errNoBoard }
func (noBoard) I2C(string) (i2c.Bus, error)        { return nil, errNoBoard }
func (noBoard) SPI(string) (spi.PortCloser, error) { return nil, errNoBoard }
