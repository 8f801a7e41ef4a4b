package outputs

import (
	"errors"
	"fmt"
	"log/slog"
	"sort"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/spi"

	"fieldkit/drivers/button"
	"fieldkit/drivers/cue"
	"fieldkit/drivers/mqttdev"
	"fieldkit/drivers/outputs/kind"
	"fieldkit/internal/clock"
	"fieldkit/internal/confutil"
	"fieldkit/internal/deps"
)

// Board hands out the hardware by name (the agent's board profile).
type Board = kind.Board

// Events is the agent's in-process bus (internal/bus.Bus), as far as
// the buttons and wearables use it.
type Events = kind.Events

// Deps is what Build needs from the agent.
type Deps struct {
	Board Board
	// MQTT is the agent's connection; required only by MQTT kinds.
	MQTT mqttdev.Conn
	// Bus receives the buttons' and wearables' events.
	Bus   Events
	Clock clock.Clock
	Log   *slog.Logger
	// Metrics records device confirmations, misses and publish failures
	// (nil: none).
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
	d.Clock, d.Log = deps.Clock(d.Clock), deps.Log(d.Log)
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
	if o.Config == nil {
		return nil, fmt.Errorf("unknown kind %q", o.Kind)
	}
	return o.Config.Build(name, kind.Env{Kind: o.Kind, Board: b.board(), MQTT: b.d.MQTT, Bus: b.d.Bus,
		Clock: b.d.Clock, Log: b.d.Log, Metrics: b.d.Metrics, CheckOnly: b.d.CheckOnly, Output: b.output})
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

type noBoard struct{}

var errNoBoard = errors.New("no board: hardware outputs need a board profile")

func (noBoard) Pin(string) (gpio.PinIO, error)     { return nil, errNoBoard }
func (noBoard) I2C(string) (i2c.Bus, error)        { return nil, errNoBoard }
func (noBoard) SPI(string) (spi.PortCloser, error) { return nil, errNoBoard }
