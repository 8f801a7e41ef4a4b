// Package gpioout drives a cue output on one GPIO line: a relay, a cue
// lamp or a vibration motor. It switches on and off, pulses, blinks, dims
// by PWM (the pin's hardware PWM when it has one, software PWM otherwise)
// and plays the named haptic patterns on a motor.
package gpioout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/physic"

	"fieldkit/drivers/cue"
	"fieldkit/internal/clock"
	"fieldkit/internal/deps"
)

// Sentinel errors.
var (
	ErrNoPin       = errors.New("gpioout: no pin")
	ErrBadOpts     = errors.New("gpioout: invalid options")
	ErrUnsupported = errors.New("action not supported by this output")
)

// Opts configure an output.
type Opts struct {
	// Name is the output's name in the config.
	Name string
	// Kind is reported by Kind(): "gpio" for a switched output, "pwm"
	// for one used mainly dimmed (a lamp or a motor).
	Kind string
	// ActiveLow inverts the line: many relay boards switch on at low.
	ActiveLow bool
	// Freq is the hardware PWM frequency.
	Freq physic.Frequency
	// SoftPeriod is the cycle of software PWM, used when the pin has no
	// hardware PWM. 10 ms (100 Hz) does not flicker visibly on a lamp and
	// is smooth on a motor.
	SoftPeriod time.Duration
	// SoftPWM forces software PWM even when the pin offers hardware PWM.
	SoftPWM bool
	Clock   clock.Clock
	Log     *slog.Logger
}

// DefaultOpts are used for the fields left zero.
var DefaultOpts = Opts{
	Kind:       "gpio",
	Freq:       physic.KiloHertz,
	SoftPeriod: 10 * time.Millisecond,
}

// State is the desired state, for the status API.
type State struct {
	Action  cue.Verb `json:"action"`
	Pattern string   `json:"pattern,omitempty"`
	Level   int      `json:"level"` // percent now
	PWM     string   `json:"pwm,omitempty"`
}

// Out is one GPIO output. It implements cue.Target.
type Out struct {
	pin gpio.PinIO
	o   Opts
	clk clock.Clock
	log *slog.Logger

	applyMu sync.Mutex // one Apply at a time
	run     cue.Runner // the timeline of the current action
	soft    cue.Runner // software PWM, when a level needs it
	hwBad   bool       // the pin refused hardware PWM once; guarded by applyMu or run
	mu      sync.Mutex // guards st
	st      State
}

// New configures pin as an output, switched off.
func New(pin gpio.PinIO, opts *Opts) (*Out, error) {
	if pin == nil {
		return nil, ErrNoPin
	}
	o := DefaultOpts
	if opts != nil {
		o = *opts
		if o.Kind == "" {
			o.Kind = DefaultOpts.Kind
		}
		if o.Freq == 0 {
			o.Freq = DefaultOpts.Freq
		}
		if o.SoftPeriod == 0 {
			o.SoftPeriod = DefaultOpts.SoftPeriod
		}
	}
	if o.Freq < 0 || o.SoftPeriod < time.Millisecond {
		return nil, fmt.Errorf("%w: PWM frequency must be positive and the software PWM period at least 1ms", ErrBadOpts)
	}
	o.Clock, o.Log = deps.Clock(o.Clock), deps.Log(o.Log)
	if o.Name == "" {
		o.Name = pin.Name()
	}
	g := &Out{pin: pin, o: o, clk: o.Clock, log: o.Log.With("output", o.Name)}
	if err := g.write(false); err != nil {
		return nil, fmt.Errorf("gpioout %s: %w", o.Name, err)
	}
	g.st = State{Action: cue.Off}
	return g, nil
}

func (g *Out) Name() string { return g.o.Name }
func (g *Out) Kind() string { return g.o.Kind }

func (g *Out) String() string { return fmt.Sprintf("gpioout{%s, %s}", g.o.Name, g.pin) }

// Check reports whether a can be played on a GPIO line.
func (g *Out) Check(a cue.Action) error {
	if err := a.Validate(); err != nil {
		return err
	}
	switch a.Do {
	case cue.On, cue.Off, cue.Pulse, cue.Blink, cue.Level, cue.Haptic:
		return nil
	}
	return fmt.Errorf("cannot do %q; it can do on, off, pulse, blink, level and haptic: %w", a.Do, ErrUnsupported)
}

// Apply sets the first level at once and plays the rest of the action on
// a goroutine the output owns, replacing whatever was running. A first
// level that is fully on or off is read back from the line and reported
// to the step's cue.Reporter as confirmed or failed; a PWM level cannot
// be read back, so it stays sent.
func (g *Out) Apply(ctx context.Context, a cue.Action) error {
	if err := g.Check(a); err != nil {
		return err
	}
	steps := cue.Timeline(a)
	g.applyMu.Lock()
	defer g.applyMu.Unlock()
	g.run.Stop()
	start := g.clk.Now()
	g.mu.Lock()
	g.st.Action, g.st.Pattern = a.Do, a.Pattern
	g.mu.Unlock()
	if err := g.set(steps[0].Level); err != nil {
		return fmt.Errorf("output %s: %w", g.o.Name, err)
	}
	if rep := cue.ReporterOf(ctx); rep != nil {
		g.readBack(rep, steps[0].Level)
	}
	if len(steps) > 1 {
		rest := steps[1:]
		g.run.Go(func(ctx context.Context) {
			cue.Play(ctx, g.clk, start, rest, func(s cue.Step) {
				if err := g.set(s.Level); err != nil {
					g.log.Error("GPIO output failed", "err", err)
				}
			})
		})
	}
	return nil
}

// State returns the desired state.
func (g *Out) State() any {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.st
}

// Close stops any running action and switches the output off.
func (g *Out) Close() error { return g.Halt() }

// Safe is Halt: off is the safe state.
func (g *Out) Safe(context.Context) error { return g.Halt() }

var _ cue.Safer = (*Out)(nil)

// Halt stops any running action and switches the output off.
func (g *Out) Halt() error {
	g.applyMu.Lock()
	defer g.applyMu.Unlock()
	g.run.Stop()
	g.mu.Lock()
	g.st.Action, g.st.Pattern = cue.Off, ""
	g.mu.Unlock()
	return g.set(0)
}

// set drives the line to level percent; only one goroutine calls it at a
// time (Apply stops the timeline before it sets anything itself).
func (g *Out) set(level int) error {
	g.soft.Stop()
	g.mu.Lock()
	g.st.Level, g.st.PWM = level, ""
	g.mu.Unlock()
	switch {
	case level <= 0:
		return g.write(false)
	case level >= 100:
		return g.write(true)
	}
	if !g.o.SoftPWM && !g.hwBad {
		duty := gpio.DutyMax * gpio.Duty(level) / 100
		if g.o.ActiveLow {
			duty = gpio.DutyMax - duty
		}
		err := g.pin.PWM(duty, g.o.Freq)
		if err == nil {
			g.setPWM("hardware")
			return nil
		}
		// Most lines have no PWM block: remember, and time it ourselves.
		g.hwBad = true
		g.log.Info("pin has no hardware PWM; using software PWM", "pin", g.pin.Name(), "err", err)
	}
	g.setPWM("software")
	period := g.o.SoftPeriod
	on := period * time.Duration(level) / 100
	g.soft.Go(func(ctx context.Context) {
		t := g.clk.Now()
		for {
			if err := g.write(true); err != nil {
				g.log.Error("software PWM stopped", "err", err)
				return
			}
			if !cue.SleepUntil(ctx, g.clk, t.Add(on)) {
				return
			}
			if err := g.write(false); err != nil {
				g.log.Error("software PWM stopped", "err", err)
				return
			}
			t = t.Add(period)
			if !cue.SleepUntil(ctx, g.clk, t) {
				return
			}
		}
	})
	return nil
}

// readBack reads the line after set drove it to level (0 or 100) and
// tells rep whether it holds: the pin's input buffer sees the driven
// level unless the line is shorted or held by something else, or the
// driver did not take the write.
func (g *Out) readBack(rep cue.Reporter, level int) {
	if level > 0 && level < 100 {
		return
	}
	want := gpio.Level((level >= 100) != g.o.ActiveLow)
	got := g.pin.Read()
	now := g.clk.Now()
	if got == want {
		cue.Report(rep, g.o.Name, cue.Confirmed, now, "")
		return
	}
	why := fmt.Sprintf("pin %s reads %v after it was driven %v", g.pin.Name(), got, want)
	g.log.Warn("GPIO output does not read back what it was set to", "err", why)
	cue.Report(rep, g.o.Name, cue.Failed, now, why)
}

func (g *Out) setPWM(s string) {
	g.mu.Lock()
	g.st.PWM = s
	g.mu.Unlock()
}

func (g *Out) write(on bool) error {
	l := gpio.Level(on != g.o.ActiveLow)
	if err := g.pin.Out(l); err != nil {
		return fmt.Errorf("pin %s: %w", g.pin.Name(), err)
	}
	return nil
}

var _ cue.Target = (*Out)(nil)
