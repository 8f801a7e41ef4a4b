package drv2605

import (
	"errors"
	"fmt"
	"sync"

	"periph.io/x/conn/v3/i2c"
)

// Registers (datasheet section 8.6).
const (
	regStatus   = 0x00
	regMode     = 0x01
	regLibrary  = 0x03
	regWaveSeq  = 0x04 // 0x04-0x0B, eight slots
	regGo       = 0x0C
	regFeedback = 0x1A
	regControl3 = 0x1D
)

const (
	modeInternalTrigger = 0x00
	modeStandby         = 0x40
	feedbackLRA         = 0x80 // N_ERM_LRA
	control3ERMOpenLoop = 0x20 // ERM_OPEN_LOOP
)

// Device ids in STATUS bits 7:5.
const (
	idDRV2605  = 3
	idDRV2605L = 7
)

// DefaultAddr is the chip's fixed I2C address.
const DefaultAddr = 0x5A

// MaxEffects is how many slots the waveform sequencer has.
const MaxEffects = 8

// Wait is OR'd into a sequencer slot to make it a pause of n×10 ms.
const Wait = 0x80

// Sentinel errors.
var (
	ErrNotFound    = errors.New("drv2605: no DRV2605/DRV2605L at this address")
	ErrBadOpts     = errors.New("drv2605: invalid options")
	ErrBadSequence = errors.New("drv2605: invalid effect sequence")
)

// Actuator is the kind of motor wired to the driver.
type Actuator int

const (
	// ERM is an eccentric rotating mass motor (a coin or pager motor).
	ERM Actuator = iota
	// LRA is a linear resonant actuator.
	LRA
)

func (a Actuator) String() string {
	if a == LRA {
		return "LRA"
	}
	return "ERM"
}

// Opts configure the driver.
type Opts struct {
	Addr     uint16
	Actuator Actuator
	// Library is the ROM library: 1-5 and 7 are the ERM libraries
	// (TouchSense 2200 A-E, F), 6 the LRA one. 0 picks 1 for ERM and 6
	// for LRA. The effect ids of cue.Patterns are chosen for library 1.
	Library uint8
}

// DefaultOpts is an ERM motor on library 1 at 0x5A.
var DefaultOpts = Opts{Addr: DefaultAddr, Actuator: ERM, Library: 1}

// Dev is one DRV2605(L).
type Dev struct {
	mu sync.Mutex
	c  i2c.Dev
	o  Opts
	id uint8
}

// New checks the device id, brings the chip out of standby in internal
// trigger mode and selects the motor type and effect library.
func New(b i2c.Bus, opts *Opts) (*Dev, error) {
	o := DefaultOpts
	if opts != nil {
		o = *opts
	}
	if o.Addr == 0 {
		o.Addr = DefaultAddr
	}
	if o.Library == 0 {
		o.Library = 1
		if o.Actuator == LRA {
			o.Library = 6
		}
	}
	if o.Library > 7 {
		return nil, fmt.Errorf("%w: library %d; expected 1-7", ErrBadOpts, o.Library)
	}
	if (o.Actuator == LRA) != (o.Library == 6) {
		return nil, fmt.Errorf("%w: library %d does not suit an %s motor (LRA uses 6, ERM 1-5 or 7)", ErrBadOpts, o.Library, o.Actuator)
	}
	d := &Dev{c: i2c.Dev{Bus: b, Addr: o.Addr}, o: o}
	if err := d.init(); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *Dev) init() error {
	st, err := d.read(regStatus)
	if err != nil {
		return err
	}
	d.id = st >> 5
	if d.id != idDRV2605 && d.id != idDRV2605L {
		return fmt.Errorf("%w: 0x%02X answered with device id %d (a DRV2604 has no effect library)", ErrNotFound, d.o.Addr, d.id)
	}
	if err := d.write(regMode, modeInternalTrigger); err != nil {
		return err
	}
	if err := d.write(regLibrary, d.o.Library); err != nil {
		return err
	}
	// Read-modify-write keeps the brake and loop gains (and any
	// auto-calibration results) the chip already holds.
	fb, err := d.read(regFeedback)
	if err != nil {
		return err
	}
	c3, err := d.read(regControl3)
	if err != nil {
		return err
	}
	if d.o.Actuator == LRA {
		fb |= feedbackLRA
		c3 &^= control3ERMOpenLoop
	} else {
		// Closed loop needs a calibrated motor; open loop plays the
		// library effects as designed on any ERM.
		fb &^= feedbackLRA
		c3 |= control3ERMOpenLoop
	}
	if err := d.write(regFeedback, fb); err != nil {
		return err
	}
	return d.write(regControl3, c3)
}

// String names the chip.
func (d *Dev) String() string {
	name := "DRV2605"
	if d.id == idDRV2605L {
		name = "DRV2605L"
	}
	return fmt.Sprintf("%s{%s, %s, library %d}", name, &d.c, d.o.Actuator, d.o.Library)
}

// CheckSequence reports whether effects fit the sequencer: 1 to 8 slots,
// each a library effect (1-123) or a pause (Wait|n).
func CheckSequence(effects []uint8) error {
	if len(effects) == 0 || len(effects) > MaxEffects {
		return fmt.Errorf("%w: %d effects; expected 1 to %d", ErrBadSequence, len(effects), MaxEffects)
	}
	for i, e := range effects {
		if e&Wait == 0 && (e == 0 || e > 123) {
			return fmt.Errorf("%w: slot %d holds effect %d; expected 1-123 or a pause", ErrBadSequence, i+1, e)
		}
	}
	return nil
}

// Play stops what is playing, loads effects into the sequencer and
// starts it. It returns once the chip has been told to go; the sequence
// plays on its own.
func (d *Dev) Play(effects []uint8) error {
	if err := CheckSequence(effects); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.write(regGo, 0); err != nil {
		return err
	}
	// One burst: the register pointer auto-increments. A zero slot ends
	// a sequence shorter than eight.
	w := append([]byte{regWaveSeq}, effects...)
	if len(effects) < MaxEffects {
		w = append(w, 0)
	}
	if err := d.c.Tx(w, nil); err != nil {
		return fmt.Errorf("drv2605: load sequence: %w", err)
	}
	return d.write(regGo, 1)
}

// Playing reports whether the sequencer is still running.
func (d *Dev) Playing() (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	g, err := d.read(regGo)
	return g&1 == 1, err
}

// Stop cuts the running sequence.
func (d *Dev) Stop() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.write(regGo, 0)
}

// Halt stops the motor and puts the chip in standby.
func (d *Dev) Halt() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.write(regGo, 0); err != nil {
		return err
	}
	return d.write(regMode, modeStandby)
}

func (d *Dev) read(reg uint8) (uint8, error) {
	var r [1]byte
	if err := d.c.Tx([]byte{reg}, r[:]); err != nil {
		return 0, fmt.Errorf("drv2605: read register 0x%02X: %w", reg, err)
	}
	return r[0], nil
}

func (d *Dev) write(reg, v uint8) error {
	if err := d.c.Tx([]byte{reg, v}, nil); err != nil {
		return fmt.Errorf("drv2605: write register 0x%02X: %w", reg, err)
	}
	return nil
}
