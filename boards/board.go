package boards

import (
	"fmt"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/spi"
)

// Board hands out the hardware of one box.
type Board interface {
	// Profile is the board's profile; Model the detected model string.
	Profile() Profile
	Model() string
	// Pin returns the pin for a logical name (config pins, profile pins)
	// or a line name such as "GPIO17".
	Pin(name string) (gpio.PinIO, error)
	// I2C opens an I2C bus by number ("" for the profile's default).
	I2C(bus string) (i2c.Bus, error)
	// SPI opens an SPI port such as "0.0" ("" for the default).
	SPI(port string) (spi.PortCloser, error)
	// Status describes the hardware state for the status API.
	Status() any
	Close() error
}

// Options for Open.
type Options struct {
	// Name is a profile name, or "auto" to detect.
	Name string
	// Pins are the config's logical pin names.
	Pins map[string]string
	// Root is the filesystem root for detection ("/" by default).
	Root string
}

// Open returns the board named in o, detecting it for "auto".
func Open(o Options) (Board, error) {
	if o.Root == "" {
		o.Root = "/"
	}
	switch o.Name {
	case "sim":
		return NewSim(o.Pins), nil
	case "", "auto":
		d, err := Detect(o.Root)
		if err != nil {
			return nil, err
		}
		return openHost(d.Profile, d.Model, o.Pins)
	}
	p, ok := Profiles[o.Name]
	if !ok {
		return nil, fmt.Errorf("board: unknown profile %q", o.Name)
	}
	d, _ := Detect(o.Root)
	return openHost(p, d.Model, o.Pins)
}
