package ina226

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/physic"
)

// Register addresses (datasheet table 7-2).
const (
	regConfig      = 0x00
	regShunt       = 0x01
	regBus         = 0x02
	regPower       = 0x03
	regCurrent     = 0x04
	regCalibration = 0x05
	regManufID     = 0xFE
	regDieID       = 0xFF
)

// Identity values the chip must report.
const (
	ManufacturerID = 0x5449 // "TI"
	DieID          = 0x226  // upper 12 bits of register 0xFF; the low 4 are the revision
)

// Fixed resolutions of the measurement registers.
const (
	ShuntLSB = 2500 * physic.NanoVolt // 2.5 µV
	BusLSB   = 1250 * physic.MicroVolt
)

// calScale is the datasheet's 0.00512 with amperes and ohms expressed in
// physic's nano units (1e-9 A × 1e-9 Ω), so the division stays integral.
const calScale = 5_120_000_000_000_000

// Opts configures the device.
//
// # Slave address
//
// A0 and A1 select one of 16 addresses, 0x40 to 0x4F (datasheet table
// 7-1); both to GND is 0x40.
type Opts struct {
	Address int
	// ShuntResistor is the value of the current-sense resistor.
	ShuntResistor physic.ElectricResistance
	// MaxCurrent is the largest current expected; it sets the current
	// resolution (MaxCurrent / 2^15).
	MaxCurrent physic.ElectricCurrent
	// Averages is how many conversions are averaged per reading: 1, 4, 16,
	// 64, 128, 256, 512 or 1024.
	Averages int
	// BusConversion and ShuntConversion are the ADC conversion times: one
	// of 140µs, 204µs, 332µs, 588µs, 1.1ms, 2.116ms, 4.156ms, 8.244ms.
	BusConversion   time.Duration
	ShuntConversion time.Duration
}

// DefaultOpts suits a 2 mΩ shunt on a camera battery rig drawing up to 20 A;
// 16 averages of 1.1 ms conversions give a fresh reading every ~35 ms.
var DefaultOpts = Opts{
	Address:         0x40,
	ShuntResistor:   2 * physic.MilliOhm,
	MaxCurrent:      20 * physic.Ampere,
	Averages:        16,
	BusConversion:   1100 * time.Microsecond,
	ShuntConversion: 1100 * time.Microsecond,
}

// Sentinel errors returned by New and Sense.
var (
	ErrAddress        = errors.New("ina226: i2c address out of range 0x40-0x4F")
	ErrShunt          = errors.New("ina226: shunt resistor must be positive")
	ErrMaxCurrent     = errors.New("ina226: max current must be positive")
	ErrAverages       = errors.New("ina226: averages must be 1, 4, 16, 64, 128, 256, 512 or 1024")
	ErrConversionTime = errors.New("ina226: conversion time must be one of 140µs, 204µs, 332µs, 588µs, 1.1ms, 2.116ms, 4.156ms, 8.244ms")
	ErrCalibration    = errors.New("ina226: shunt and max current give a calibration outside 1-32767; use a larger max current or a different shunt")
	ErrNotINA226      = errors.New("ina226: the device at this address is not an INA226")
	ErrHalted         = errors.New("ina226: device is halted")
)

var averages = []int{1, 4, 16, 64, 128, 256, 512, 1024}

var conversionTimes = []time.Duration{
	140 * time.Microsecond, 204 * time.Microsecond, 332 * time.Microsecond, 588 * time.Microsecond,
	1100 * time.Microsecond, 2116 * time.Microsecond, 4156 * time.Microsecond, 8244 * time.Microsecond,
}

// modeContinuous measures shunt and bus voltage continuously; modePowerDown
// stops the ADC (datasheet table 7-6).
const (
	modeContinuous = 0b111
	modePowerDown  = 0b000
	configFixed    = 1 << 14 // bits 14-12 read back as 100
)

// Dev is a handle to one INA226.
type Dev struct {
	c          i2c.Dev
	mu         sync.Mutex
	config     uint16
	cal        uint16
	currentLSB physic.ElectricCurrent
	powerLSB   physic.Power
	halted     bool
}

// New checks the chip's identity, then programs the configuration and
// calibration registers.
func New(bus i2c.Bus, opts *Opts) (*Dev, error) {
	if opts == nil {
		opts = &DefaultOpts
	}
	o := *opts
	if o.Address == 0 {
		o.Address = DefaultOpts.Address
	}
	if o.Address < 0x40 || o.Address > 0x4F {
		return nil, ErrAddress
	}
	if o.ShuntResistor <= 0 {
		return nil, ErrShunt
	}
	if o.MaxCurrent <= 0 {
		return nil, ErrMaxCurrent
	}
	if o.Averages == 0 {
		o.Averages = DefaultOpts.Averages
	}
	if o.BusConversion == 0 {
		o.BusConversion = DefaultOpts.BusConversion
	}
	if o.ShuntConversion == 0 {
		o.ShuntConversion = DefaultOpts.ShuntConversion
	}
	avg := index(averages, o.Averages)
	if avg < 0 {
		return nil, ErrAverages
	}
	vb, vs := index(conversionTimes, o.BusConversion), index(conversionTimes, o.ShuntConversion)
	if vb < 0 || vs < 0 {
		return nil, ErrConversionTime
	}
	d := &Dev{c: i2c.Dev{Bus: bus, Addr: uint16(o.Address)}}
	// Datasheet equation 2: Current_LSB = max expected current / 2^15.
	d.currentLSB = o.MaxCurrent / (1 << 15)
	// Equation 3: power LSB is 25 × current LSB.
	d.powerLSB = physic.Power(d.currentLSB) * 25
	// Equation 1: CAL = 0.00512 / (Current_LSB × R_shunt); bit 15 is reserved.
	lsb, r := int64(d.currentLSB), int64(o.ShuntResistor)
	if lsb == 0 || r > calScale/lsb {
		return nil, ErrCalibration
	}
	cal := calScale / (lsb * r)
	if cal < 1 || cal > 0x7FFF {
		return nil, ErrCalibration
	}
	d.cal = uint16(cal)
	d.config = configFixed | uint16(avg)<<9 | uint16(vb)<<6 | uint16(vs)<<3 | modeContinuous

	manuf, err := d.read(regManufID)
	if err != nil {
		return nil, fmt.Errorf("ina226 at %#x: read manufacturer id: %w", o.Address, err)
	}
	if manuf != ManufacturerID {
		return nil, fmt.Errorf("%w: manufacturer id %#04x, want %#04x", ErrNotINA226, manuf, ManufacturerID)
	}
	die, err := d.read(regDieID)
	if err != nil {
		return nil, fmt.Errorf("ina226 at %#x: read die id: %w", o.Address, err)
	}
	if die>>4 != DieID {
		return nil, fmt.Errorf("%w: die id %#04x, want %#03x_", ErrNotINA226, die, DieID)
	}
	if err := d.write(regConfig, d.config); err != nil {
		return nil, fmt.Errorf("ina226 at %#x: write configuration: %w", o.Address, err)
	}
	if err := d.write(regCalibration, d.cal); err != nil {
		return nil, fmt.Errorf("ina226 at %#x: write calibration: %w", o.Address, err)
	}
	return d, nil
}

func index[T comparable](list []T, v T) int {
	for i, x := range list {
		if x == v {
			return i
		}
	}
	return -1
}

// PowerMonitor is one reading.
type PowerMonitor struct {
	Shunt   physic.ElectricPotential
	Voltage physic.ElectricPotential
	Current physic.ElectricCurrent
	Power   physic.Power
}

func (p PowerMonitor) String() string {
	return fmt.Sprintf("Bus: %s, Current: %s, Power: %s, Shunt: %s", p.Voltage, p.Current, p.Power, p.Shunt)
}

// Sense reads shunt voltage, bus voltage, current and power, in that order.
func (d *Dev) Sense() (PowerMonitor, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var pm PowerMonitor
	if d.halted {
		return pm, ErrHalted
	}
	shunt, err := d.read(regShunt)
	if err != nil {
		return pm, fmt.Errorf("ina226: read shunt voltage: %w", err)
	}
	pm.Shunt = physic.ElectricPotential(int16(shunt)) * ShuntLSB
	bus, err := d.read(regBus)
	if err != nil {
		return pm, fmt.Errorf("ina226: read bus voltage: %w", err)
	}
	pm.Voltage = physic.ElectricPotential(bus) * BusLSB
	cur, err := d.read(regCurrent)
	if err != nil {
		return pm, fmt.Errorf("ina226: read current: %w", err)
	}
	pm.Current = physic.ElectricCurrent(int16(cur)) * d.currentLSB
	pw, err := d.read(regPower)
	if err != nil {
		return pm, fmt.Errorf("ina226: read power: %w", err)
	}
	pm.Power = physic.Power(pw) * d.powerLSB
	return pm, nil
}

// CurrentLSB is the current resolution chosen from MaxCurrent.
func (d *Dev) CurrentLSB() physic.ElectricCurrent { return d.currentLSB }

// Calibration is the value written to the calibration register.
func (d *Dev) Calibration() uint16 { return d.cal }

// Halt puts the chip in power-down mode (a few µA); New wakes it again.
func (d *Dev) Halt() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.halted {
		return nil
	}
	if err := d.write(regConfig, d.config&^0b111|modePowerDown); err != nil {
		return fmt.Errorf("ina226: power down: %w", err)
	}
	d.halted = true
	return nil
}

func (d *Dev) String() string { return fmt.Sprintf("INA226{%s}", &d.c) }

func (d *Dev) read(reg byte) (uint16, error) {
	var b [2]byte
	if err := d.c.Tx([]byte{reg}, b[:]); err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint16(b[:]), nil
}

func (d *Dev) write(reg byte, v uint16) error {
	return d.c.Tx([]byte{reg, byte(v >> 8), byte(v)}, nil)
}
