// Package strip is the output kinds ws2812 and apa102: addressable LED
// strips on an SPI port.
package strip

import (
	"io"

	"fieldkit/drivers/cue"
	"fieldkit/drivers/ledstrip"
	"fieldkit/drivers/outputs/kind"
	"fieldkit/internal/confutil"
)

// Config is a strip.
type Config struct {
	SPI   string `yaml:"spi"`
	LEDs  int    `yaml:"leds"`
	Color string `yaml:"color"`
}

// New is a config to decode into.
func New() kind.Config { return &Config{} }

func (c *Config) Validate(p *confutil.Problems) {
	if c.SPI == "" {
		p.Addf("", "missing spi: the SPI port the strip's data line is on (e.g. spi: SPI0.0)")
	}
	if c.LEDs < 1 || c.LEDs > 2000 {
		p.Addf("leds", "%d LEDs: expected the strip's LED count, 1-2000", c.LEDs)
	}
	if c.Color != "" {
		if _, _, _, err := cue.ParseColor(c.Color); err != nil {
			p.Addf("color", "%v", err)
		}
	}
}

func (c *Config) Build(name string, env kind.Env) (cue.Target, error) {
	port, err := env.Board.SPI(c.SPI)
	if err != nil {
		return nil, err
	}
	so := &ledstrip.Opts{Name: name, NumPixels: c.LEDs, Color: c.Color, Clock: env.Clock, Log: env.Log}
	var s *ledstrip.Strip
	if env.Kind == "apa102" {
		s, err = ledstrip.NewAPA102(port, so)
	} else {
		s, err = ledstrip.NewWS2812(port, so)
	}
	if err != nil {
		port.Close()
		return nil, err
	}
	return &closing{Target: s, c: port}, nil
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
