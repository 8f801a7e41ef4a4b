// Package gpiopin is the output kinds gpio (a relay or lamp on a line,
// on/off/pulse/blink) and pwm (a motor or dimmer, levels too).
package gpiopin

import (
	"periph.io/x/conn/v3/physic"

	"fieldkit/drivers/cue"
	"fieldkit/drivers/gpioout"
	"fieldkit/drivers/outputs/kind"
	"fieldkit/internal/confutil"
)

// Config is a gpio or pwm output.
type Config struct {
	Pin       string `yaml:"pin"`
	ActiveLow bool   `yaml:"active_low"`
	PWMHz     int    `yaml:"pwm_hz"`
	SoftPWM   bool   `yaml:"soft_pwm"`
}

// New is a config to decode into.
func New() kind.Config { return &Config{} }

func (c *Config) Pins() []string { return []string{c.Pin} }

func (c *Config) Validate(p *confutil.Problems) {
	kind.CheckPin(p, "", c.Pin)
	if c.PWMHz < 0 || c.PWMHz > 100000 {
		p.Addf("pwm_hz", "%d Hz is out of range; expected 1-100000", c.PWMHz)
	}
}

func (c *Config) Build(name string, env kind.Env) (cue.Target, error) {
	pin, err := env.Board.Pin(c.Pin)
	if err != nil {
		return nil, err
	}
	return gpioout.New(pin, &gpioout.Opts{Name: name, Kind: env.Kind, ActiveLow: c.ActiveLow,
		Freq: physic.Frequency(c.PWMHz) * physic.Hertz, SoftPWM: c.SoftPWM, Clock: env.Clock, Log: env.Log})
}
