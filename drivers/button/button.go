// Package button reads push buttons on GPIO lines (a "go" button on the
// presenter's desk, a "reprint" button at the pickup counter), debounces
// them on an injected clock and fires bus events that scenes and other
// parts trigger on: button/<name>/press and button/<name>/release.
package button

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sync/atomic"
	"time"

	"periph.io/x/conn/v3/gpio"

	"fieldkit/internal/clock"
	"fieldkit/internal/deps"
	"fieldkit/internal/topic"
)

// Sentinel errors.
var (
	ErrNoPin   = errors.New("button: no pin")
	ErrBadOpts = errors.New("button: invalid options")
)

// Events is where a button's presses go: the agent's in-process bus
// (internal/bus.Bus), whose topics are relative to the box prefix.
type Events interface {
	Publish(topic string, payload []byte)
}

// Opts configure a button.
type Opts struct {
	// Name is used in the event topics.
	Name string
	// Pull is the line's bias: PullUp for a button to ground (the usual
	// wiring), PullDown for a button to 3.3 V, Float for an external
	// resistor.
	Pull gpio.Pull
	// ActiveHigh means pressed reads high. The default follows Pull:
	// pressed is low with a pull-up, high with a pull-down.
	ActiveHigh bool
	// Debounce is how long the level must stay put before a change
	// counts; contact bounce is over in a few milliseconds.
	Debounce time.Duration
	// Poll bounds each wait for an edge, so that Run notices its context
	// ending and a level that settled after the last edge.
	Poll time.Duration
	// Bus receives the events button/<name>/press|release; nil means none.
	Bus   Events
	Clock clock.Clock
	Log   *slog.Logger
}

// DefaultOpts are a button to ground with a 30 ms debounce.
var DefaultOpts = Opts{Pull: gpio.PullUp, Debounce: 30 * time.Millisecond, Poll: 50 * time.Millisecond}

// Press is the payload of button/<name>/press.
type Press struct {
	Button string    `json:"button"`
	At     time.Time `json:"at"`
}

// Release is the payload of button/<name>/release.
type Release struct {
	Button string    `json:"button"`
	At     time.Time `json:"at"`
	HeldMs int64     `json:"held_ms"`
}

// Button is one push button.
type Button struct {
	pin gpio.PinIn
	o   Opts
	clk clock.Clock
	log *slog.Logger

	pressed atomic.Bool
	presses atomic.Uint64
	edges   atomic.Uint64
	loops   atomic.Uint64
}

var nameRE = regexp.MustCompile(`^[a-z0-9_-]{1,32}$`)

// New sets the line up as an input with the bias and both edges.
func New(pin gpio.PinIn, opts *Opts) (*Button, error) {
	if pin == nil {
		return nil, ErrNoPin
	}
	o := DefaultOpts
	if opts != nil {
		o = *opts
		if o.Debounce == 0 {
			o.Debounce = DefaultOpts.Debounce
		}
		if o.Poll == 0 {
			o.Poll = DefaultOpts.Poll
		}
	}
	if !nameRE.MatchString(o.Name) {
		return nil, fmt.Errorf("%w: name %q; expected 1-32 lower-case letters, digits, '_' or '-'", ErrBadOpts, o.Name)
	}
	if o.Debounce < 0 || o.Debounce > time.Second || o.Poll <= 0 {
		return nil, fmt.Errorf("%w: debounce %v; expected 0-1s", ErrBadOpts, o.Debounce)
	}
	if o.Pull == gpio.PullDown {
		o.ActiveHigh = true
	}
	o.Clock, o.Log = deps.Clock(o.Clock), deps.Log(o.Log)
	if err := pin.In(o.Pull, gpio.BothEdges); err != nil {
		return nil, fmt.Errorf("button %s: pin %s: %w", o.Name, pin.Name(), err)
	}
	return &Button{pin: pin, o: o, clk: o.Clock, log: o.Log.With("button", o.Name)}, nil
}

// Name is the button's name.
func (b *Button) Name() string { return b.o.Name }

// Topic is the press event's bus topic.
func (b *Button) Topic() string { return "button/" + b.o.Name + "/press" }

// Pressed reports the debounced state.
func (b *Button) Pressed() bool { return b.pressed.Load() }

// Presses counts debounced presses since start.
func (b *Button) Presses() uint64 { return b.presses.Load() }

// Edges counts raw edges seen: many more edges than presses is a bouncy
// or noisy line.
func (b *Button) Edges() uint64 { return b.edges.Load() }

func (b *Button) active() bool { return (b.pin.Read() == gpio.High) == b.o.ActiveHigh }

// Run watches the line until ctx ends. A change counts once the level has
// held for Debounce since the last edge.
func (b *Button) Run(ctx context.Context) error {
	state := b.active()
	b.pressed.Store(state)
	cand, candSince := state, b.clk.Now()
	var pressedAt time.Time
	for ctx.Err() == nil {
		edge := b.pin.WaitForEdge(b.o.Poll)
		now := b.clk.Now()
		lvl := b.active()
		if edge || lvl != cand {
			// Any edge restarts the window, even one that bounced back
			// to the same level before we read it.
			cand, candSince = lvl, now
		}
		if edge {
			b.edges.Add(1)
		}
		if cand != state && now.Sub(candSince) >= b.o.Debounce {
			state = cand
			b.pressed.Store(state)
			if state {
				pressedAt = now
				b.presses.Add(1)
				b.publish("press", Press{Button: b.o.Name, At: now})
			} else {
				b.publish("release", Release{Button: b.o.Name, At: now, HeldMs: now.Sub(pressedAt).Milliseconds()})
			}
		}
		b.loops.Add(1)
	}
	return nil
}

func (b *Button) publish(what string, v any) {
	p, _ := json.Marshal(v)
	b.log.Debug("button", "event", what)
	if b.o.Bus != nil {
		b.o.Bus.Publish(topic.Button(b.o.Name, what), p)
	}
}

// Halt releases the line.
func (b *Button) Halt() error {
	if h, ok := b.pin.(interface{ Halt() error }); ok {
		return h.Halt()
	}
	return nil
}
