// Package haptic is the output kind drv2605: a coin or LRA motor behind
// a DRV2605L haptic driver on I2C, playing the named patterns from the
// chip's effect library.
package haptic

import (
	"fieldkit/drivers/cue"
	"fieldkit/drivers/drv2605"
	"fieldkit/drivers/outputs/kind"
	"fieldkit/internal/confutil"
)

// Config is a drv2605 output.
type Config struct {
	I2C      string `yaml:"i2c"`
	Actuator string `yaml:"actuator"`
	Library  int    `yaml:"library"`
}

// New is a config to decode into.
func New() kind.Config { return &Config{} }

func (c *Config) Validate(p *confutil.Problems) {
	if c.I2C == "" {
		p.Addf("", "missing i2c: the I2C bus the DRV2605L is on (e.g. i2c: \"1\")")
	}
	switch c.Actuator {
	case "", "erm", "lra":
	default:
		p.Addf("actuator", "unknown actuator %q; expected erm (a coin or pager motor) or lra", c.Actuator)
	}
	if c.Library < 0 || c.Library > 7 {
		p.Addf("library", "library %d; expected 1-7", c.Library)
	}
}

func (c *Config) Build(name string, env kind.Env) (cue.Target, error) {
	if env.CheckOnly {
		// What the chip can play is known without asking it.
		return kind.Unopened(drv2605.NewTarget(name, nil, env.Log)), nil
	}
	bus, err := env.Board.I2C(c.I2C)
	if err != nil {
		return nil, err
	}
	do := drv2605.DefaultOpts
	do.Library = uint8(c.Library) // 0: the actuator's usual library
	if c.Actuator == "lra" {
		do.Actuator = drv2605.LRA
	}
	dev, err := drv2605.New(bus, &do)
	if err != nil {
		return nil, err
	}
	return drv2605.NewTarget(name, dev, env.Log), nil
}
