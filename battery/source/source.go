// Package source is what a battery source implements to plug into the
// battery watch: a config type of its own, decoded strictly from the
// rig's entry (the keys the source reads), that validates itself, says
// how the rig's pack is completed, and opens a reader. The battery
// package registers the sources in one table.
package source

import (
	"context"
	"fmt"
	"strings"
	"time"

	"periph.io/x/conn/v3/i2c"

	"fieldkit/drivers/power"
	"fieldkit/internal/clock"
	"fieldkit/internal/confutil"
)

// Config is one rig's source settings, of one kind.
type Config interface {
	// Validate records problems at paths relative to the rig ("topic").
	Validate(p *confutil.Problems)
	// Pack completes the pack the rig describes (a preset, or chemistry
	// and cells), most sources with ResolvePack.
	Pack(s PackSpec) (power.Pack, error)
	// Poll is how often the source is read by default; 0 means it is not
	// polled: it pushes (a Pusher).
	Poll() time.Duration
	// Open returns the rig's reader, a Poller or a Pusher. Nothing is
	// opened yet: a poller opens its device on its first Poll, so that a
	// sensor plugged in late is picked up without a restart.
	Open(env Env) (any, error)
}

// Env is what Open may use.
type Env struct {
	Kind  string // the source's name in the config
	Rig   string // the rig's name
	Board Board  // nil without a board
	Clock clock.Clock
	Pack  power.Pack // the rig's pack, completed
}

// Board hands out I2C buses by name.
type Board interface {
	I2C(bus string) (i2c.Bus, error)
}

// Poller is a source read on a schedule. Poll may be called from the
// rig's loop and from the doctor check; implementations serialise
// themselves.
type Poller interface {
	Poll(ctx context.Context) (power.Sample, error)
	Close() error
}

// Pusher is a source whose device publishes its readings on an MQTT
// topic; the watch subscribes and hands each payload to Parse.
type Pusher interface {
	Topic() string
	Parse(at time.Time, payload []byte) (power.Sample, error)
}

// PackSpec is how the rig describes its pack.
type PackSpec struct {
	Preset       string
	Chemistry    string
	Cells        int
	CapacityWh   float64
	InternalOhms float64
}

// Key is the rig key a problem with the pack is reported at.
func (s PackSpec) Key() string {
	if s.Preset != "" {
		return "preset"
	}
	if s.Chemistry != "" {
		return "chemistry"
	}
	return "cells"
}

// PackDefaults say how a source completes a pack the rig leaves out.
type PackDefaults struct {
	// ReportsCharge: the device reports its charge itself, so a rig with
	// no pack gets one Li-ion cell, a placeholder for the curve that a
	// percent source never uses.
	ReportsCharge bool
	// Base is the pack of a rig that names neither preset, chemistry nor
	// cells; nil means the rig must describe it.
	Base *power.Pack
}

// ResolvePack resolves the preset and overrides.
func ResolvePack(s PackSpec, d PackDefaults) (power.Pack, error) {
	var pk power.Pack
	switch {
	case s.Preset != "":
		var ok bool
		pk, ok = power.Presets[s.Preset]
		if !ok {
			return pk, fmt.Errorf("unknown preset %q; expected one of: %s", s.Preset, strings.Join(power.PresetNames(), ", "))
		}
	case s.Chemistry == "" && s.Cells == 0:
		if d.ReportsCharge {
			return power.Pack{Chemistry: power.LiIon, Cells: 1}, nil
		}
		if d.Base == nil {
			return pk, fmt.Errorf("the pack is not described; set preset (%s) or chemistry and cells", strings.Join(power.PresetNames(), ", "))
		}
		pk = *d.Base
	}
	if s.Chemistry != "" {
		c, ok := power.Chemistries[s.Chemistry]
		if !ok {
			return pk, fmt.Errorf("unknown chemistry %q; expected one of: %s", s.Chemistry, strings.Join(power.ChemistryNames(), ", "))
		}
		pk.Chemistry = c
	} else if s.Preset == "" && d.Base == nil {
		return pk, fmt.Errorf("cells without chemistry; set chemistry (%s)", strings.Join(power.ChemistryNames(), ", "))
	}
	if s.Cells != 0 {
		pk.Cells = s.Cells
	}
	if s.CapacityWh != 0 {
		pk.CapacityWh = s.CapacityWh
	}
	if s.InternalOhms != 0 {
		pk.InternalOhms = s.InternalOhms
	}
	if err := pk.Validate(); err != nil {
		return pk, err
	}
	return pk, nil
}
