package boards

import (
	"fmt"
	"sync"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/i2c/i2creg"
	"periph.io/x/conn/v3/spi"
	"periph.io/x/conn/v3/spi/spireg"
	"periph.io/x/host/v3"
)

// hostBoard is a real board driven by periph host.
type hostBoard struct {
	profile Profile
	model   string
	pins    map[string]string

	mu     sync.Mutex
	opened map[string]gpio.PinIO // line → pin, for Status
	closer []func() error
}

var hostInit = sync.OnceValues(host.Init)

func openHost(p Profile, model string, pins map[string]string) (*hostBoard, error) {
	if _, err := hostInit(); err != nil {
		return nil, fmt.Errorf("board %s: periph host init: %w", p.Name, err)
	}
	return &hostBoard{profile: p, model: model, pins: pins, opened: map[string]gpio.PinIO{}}, nil
}

func (b *hostBoard) Profile() Profile { return b.profile }
func (b *hostBoard) Model() string    { return b.model }

func (b *hostBoard) Pin(name string) (gpio.PinIO, error) {
	line, err := b.profile.Resolve(name, b.pins)
	if err != nil {
		return nil, err
	}
	// By name, not number: on a Pi 5 the lines live on another chip and
	// only the names are stable.
	p := gpioreg.ByName(line)
	if p == nil {
		return nil, fmt.Errorf("board %s: no GPIO line %s (pin %q); is the user in the gpio group?", b.profile.Name, line, name)
	}
	b.mu.Lock()
	b.opened[line] = p
	b.mu.Unlock()
	return p, nil
}

func (b *hostBoard) I2C(bus string) (i2c.Bus, error) {
	if bus == "" {
		bus = b.profile.I2C
	}
	bc, err := i2creg.Open(bus)
	if err != nil {
		return nil, fmt.Errorf("board %s: I2C bus %s: %w (is I2C enabled and the user in the i2c group?)", b.profile.Name, bus, err)
	}
	b.mu.Lock()
	b.closer = append(b.closer, bc.Close)
	b.mu.Unlock()
	return bc, nil
}

func (b *hostBoard) SPI(port string) (spi.PortCloser, error) {
	if port == "" {
		port = b.profile.SPI
	}
	pc, err := spireg.Open(port)
	if err != nil {
		return nil, fmt.Errorf("board %s: SPI port %s: %w (is SPI enabled and the user in the spi group?)", b.profile.Name, port, err)
	}
	return pc, nil
}

// PinStatus is one pin's state in Status.
type PinStatus struct {
	Line  string `json:"line"`
	Level bool   `json:"level"`
	// Duty is the PWM duty in percent, when PWM is on.
	Duty float64 `json:"duty,omitempty"`
}

func (b *hostBoard) Status() any {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[string]PinStatus{}
	for line, p := range b.opened {
		out[line] = PinStatus{Line: line, Level: bool(p.Read())}
	}
	return map[string]any{"profile": b.profile.Name, "model": b.model, "pins": out}
}

func (b *hostBoard) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	var first error
	for _, c := range b.closer {
		if err := c(); err != nil && first == nil {
			first = err
		}
	}
	b.closer = nil
	return first
}
