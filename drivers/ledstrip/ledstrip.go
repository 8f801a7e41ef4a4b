// Package ledstrip drives addressable LED strips as cue outputs: WS2812
// over SPI (periph nrzled.NewSPI, which also works on a Pi 5) and APA102.
// It renders solid colours at a brightness and the timed effects crews
// use on stage (chase, flash, a countdown bar that fills or empties over
// a duration) on an injected clock, one goroutine per strip.
package ledstrip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/spi"
	"periph.io/x/devices/v3/apa102"
	"periph.io/x/devices/v3/nrzled"

	"fieldkit/drivers/cue"
	"fieldkit/internal/clock"
	"fieldkit/internal/deps"
)

// Sentinel errors.
var (
	ErrBadOpts     = errors.New("ledstrip: invalid options")
	ErrUnsupported = errors.New("action not supported by an LED strip")
)

// PixelWriter is the chip driver under a strip: it takes RGB bytes, three
// per pixel. periph's nrzled.Dev and apa102.Dev both are one.
type PixelWriter interface {
	Write(pixels []byte) (int, error)
	Halt() error
}

// Opts configure a strip.
type Opts struct {
	Name string
	// Kind is reported by Kind() ("ws2812", "apa102").
	Kind string
	// NumPixels is the number of LEDs.
	NumPixels int
	// Frame is the step of a chase.
	Frame time.Duration
	// FlashPeriod is one on/off cycle of a flash without a period.
	FlashPeriod time.Duration
	// Color is the colour of "on" until an action sets one.
	Color string
	Clock clock.Clock
	Log   *slog.Logger
}

// DefaultOpts are used for the fields left zero.
var DefaultOpts = Opts{
	Kind:        "ledstrip",
	NumPixels:   30,
	Frame:       50 * time.Millisecond,
	FlashPeriod: 500 * time.Millisecond,
	Color:       "#ffffff",
}

// State is the desired state, for the status API.
type State struct {
	On         bool   `json:"on"`
	Color      string `json:"color"`
	Brightness int    `json:"brightness"`
	Effect     string `json:"effect,omitempty"`
	Error      string `json:"error,omitempty"`
}

// Strip is one LED strip. It implements cue.Target.
type Strip struct {
	w   PixelWriter
	o   Opts
	clk clock.Clock
	log *slog.Logger

	applyMu sync.Mutex
	run     cue.Runner

	mu  sync.Mutex // guards st, rgb and buf
	st  State
	rgb [3]uint8
	buf []byte
}

// NewWS2812 drives a WS2812 strip on an SPI port's MOSI line.
func NewWS2812(p spi.Port, o *Opts) (*Strip, error) {
	oo := fill(o, "ws2812")
	d, err := nrzled.NewSPI(p, &nrzled.Opts{NumPixels: oo.NumPixels, Channels: 3, Freq: 2500 * physic.KiloHertz})
	if err != nil {
		return nil, fmt.Errorf("ledstrip %s: %w", oo.Name, err)
	}
	return New(d, &oo)
}

// NewAPA102 drives an APA102 strip on an SPI port. Colours pass through
// unchanged (no temperature correction), so both kinds of strip show the
// same colour for the same cue.
func NewAPA102(p spi.Port, o *Opts) (*Strip, error) {
	oo := fill(o, "apa102")
	ao := apa102.PassThruOpts
	ao.NumPixels = oo.NumPixels
	d, err := apa102.New(p, &ao)
	if err != nil {
		return nil, fmt.Errorf("ledstrip %s: %w", oo.Name, err)
	}
	return New(d, &oo)
}

func fill(o *Opts, kind string) Opts {
	oo := DefaultOpts
	if o != nil {
		oo = *o
	}
	if oo.Kind == "" {
		oo.Kind = kind
	}
	if oo.NumPixels == 0 {
		oo.NumPixels = DefaultOpts.NumPixels
	}
	return oo
}

// New drives the strip behind w, switched off.
func New(w PixelWriter, opts *Opts) (*Strip, error) {
	o := fill(opts, DefaultOpts.Kind)
	if o.Frame == 0 {
		o.Frame = DefaultOpts.Frame
	}
	if o.FlashPeriod == 0 {
		o.FlashPeriod = DefaultOpts.FlashPeriod
	}
	if o.Color == "" {
		o.Color = DefaultOpts.Color
	}
	r, g, b, err := cue.ParseColor(o.Color)
	switch {
	case err != nil:
		return nil, fmt.Errorf("%w: %v", ErrBadOpts, err)
	case o.NumPixels < 1 || o.NumPixels > 2000:
		return nil, fmt.Errorf("%w: %d LEDs; expected 1-2000", ErrBadOpts, o.NumPixels)
	case o.Frame < time.Millisecond || o.FlashPeriod < 2*time.Millisecond:
		return nil, fmt.Errorf("%w: frame and flash period must be at least a millisecond", ErrBadOpts)
	}
	o.Clock, o.Log = deps.Clock(o.Clock), deps.Log(o.Log)
	s := &Strip{w: w, o: o, clk: o.Clock, log: o.Log.With("output", o.Name),
		rgb: [3]uint8{r, g, b}, buf: make([]byte, 3*o.NumPixels),
		st: State{Color: o.Color, Brightness: 100}}
	if err := s.paint(0, 0); err != nil {
		return nil, fmt.Errorf("ledstrip %s: %w", o.Name, err)
	}
	return s, nil
}

func (s *Strip) Name() string { return s.o.Name }
func (s *Strip) Kind() string { return s.o.Kind }

// Check accepts every action but haptic.
func (s *Strip) Check(a cue.Action) error {
	if err := a.Validate(); err != nil {
		return err
	}
	if a.Do == cue.Haptic {
		return fmt.Errorf("cannot play haptic patterns; use a motor, a drv2605 or a wearable: %w", ErrUnsupported)
	}
	return nil
}

// Apply paints the first frame at once and runs any effect on the
// strip's goroutine, replacing the previous one.
func (s *Strip) Apply(_ context.Context, a cue.Action) error {
	if err := s.Check(a); err != nil {
		return err
	}
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	s.run.Stop()
	start := s.clk.Now()

	s.mu.Lock()
	if a.Color != "" {
		r, g, b, _ := cue.ParseColor(a.Color)
		s.rgb, s.st.Color = [3]uint8{r, g, b}, a.Color
	}
	if a.Level != nil {
		s.st.Brightness = *a.Level
	}
	s.st.Effect = ""
	if a.Do == cue.Effect || a.Do == cue.Blink || a.Do == cue.Pulse {
		s.st.Effect = string(a.Do)
		if a.Do == cue.Effect {
			s.st.Effect = a.Effect
		}
	}
	s.st.On = a.Do != cue.Off && !(a.Do == cue.Level && s.st.Brightness == 0)
	s.mu.Unlock()

	eff := ""
	if a.Do == cue.Effect {
		eff = a.Effect
	}
	n := s.o.NumPixels
	var frames func(ctx context.Context)
	var err error
	switch {
	case a.Do == cue.Off:
		err = s.paint(0, 0)
	case a.Do == cue.Pulse:
		err = s.paint(0, n)
		frames = func(ctx context.Context) {
			if cue.SleepUntil(ctx, s.clk, start.Add(a.For)) {
				s.frame(0, 0)
				s.setOn(false)
			}
		}
	case a.Do == cue.Blink || eff == "flash":
		period, count := a.Period, a.Count
		if period == 0 {
			period = s.o.FlashPeriod
		}
		if count == 0 && a.For > 0 {
			count = int((a.For + period - 1) / period)
		}
		err = s.paint(0, n)
		frames = func(ctx context.Context) {
			for i := 0; count == 0 || i < count; i++ {
				at := start.Add(time.Duration(i) * period)
				if i > 0 && (!cue.SleepUntil(ctx, s.clk, at) || !s.frame(0, n)) {
					return
				}
				if !cue.SleepUntil(ctx, s.clk, at.Add(period/2)) || !s.frame(0, 0) {
					return
				}
			}
			s.setOn(false)
		}
	case eff == "chase":
		width := max(1, n/10)
		err = s.paint(0, width)
		frames = func(ctx context.Context) {
			for k := 1; ; k++ {
				at := time.Duration(k) * s.o.Frame
				if a.For > 0 && at >= a.For {
					if cue.SleepUntil(ctx, s.clk, start.Add(a.For)) {
						s.frame(0, 0)
						s.setOn(false)
					}
					return
				}
				if !cue.SleepUntil(ctx, s.clk, start.Add(at)) || !s.frame(k%n, width) {
					return
				}
			}
		}
	case eff == "countdown":
		lit := func(k int) int {
			if a.Reverse {
				return n - k
			}
			return k
		}
		err = s.paint(0, lit(0))
		frames = func(ctx context.Context) {
			for k := 1; k <= n; k++ {
				// The bar shows floor(n·elapsed/For) LEDs, so LED k
				// changes at ceil(k·For/n).
				at := time.Duration((int64(a.For)*int64(k) + int64(n) - 1) / int64(n))
				if !cue.SleepUntil(ctx, s.clk, start.Add(at)) || !s.frame(0, lit(k)) {
					return
				}
			}
			if a.Reverse {
				s.setOn(false)
			}
		}
	case a.Do == cue.Level && s.State().(State).Brightness == 0:
		err = s.paint(0, 0)
	default: // on, level, color, solid
		err = s.paint(0, n)
	}
	if err != nil {
		return fmt.Errorf("output %s: %w", s.o.Name, err)
	}
	if frames != nil {
		s.run.Go(frames)
	}
	return nil
}

func (s *Strip) setOn(on bool) {
	s.mu.Lock()
	s.st.On = on
	s.mu.Unlock()
}

// frame paints from a running effect; a write error ends the effect.
func (s *Strip) frame(from, count int) bool {
	if err := s.paint(from, count); err != nil {
		s.log.Error("LED strip write failed; effect stopped", "err", err)
		return false
	}
	return true
}

// paint lights count pixels from index from (wrapping around the end)
// in the current colour and brightness, and sends the frame.
func (s *Strip) paint(from, count int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var px [3]byte
	for i, c := range s.rgb {
		px[i] = uint8(int(c) * s.st.Brightness / 100)
	}
	clear(s.buf)
	n := s.o.NumPixels
	for i := 0; i < count && i < n; i++ {
		copy(s.buf[3*((from+i)%n):], px[:])
	}
	if _, err := s.w.Write(s.buf); err != nil {
		s.st.Error = err.Error()
		return err
	}
	s.st.Error = ""
	return nil
}

// State returns the desired state.
func (s *Strip) State() any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st
}

// Close stops any effect and turns the LEDs off.
func (s *Strip) Close() error { return s.Halt() }

// Safe stops any effect and turns the LEDs off (the safe state).
func (s *Strip) Safe(ctx context.Context) error { return s.Apply(ctx, cue.Action{Do: cue.Off}) }

var _ cue.Safer = (*Strip)(nil)

// Halt stops any effect and turns the LEDs off.
func (s *Strip) Halt() error {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	s.run.Stop()
	s.setOn(false)
	return s.w.Halt()
}

var _ cue.Target = (*Strip)(nil)
