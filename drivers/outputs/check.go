package outputs

import (
	"context"
	"errors"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/spi"
	"periph.io/x/conn/v3/spi/spitest"

	"fieldkit/internal/event"
)

// checkBoard stands in for the board when targets are built only to check
// scene files: the config's validation has already checked the pin, bus
// and port names against the real board profile.
type checkBoard struct{}

func (checkBoard) Pin(name string) (gpio.PinIO, error) { return &gpiotest.Pin{N: name}, nil }
func (checkBoard) I2C(string) (i2c.Bus, error) {
	return nil, errors.New("outputs: no I2C bus while checking scenes")
}
func (checkBoard) SPI(string) (spi.PortCloser, error) { return &spitest.Record{}, nil }

// checkConn is the MQTT connection of targets built to check scenes: it
// sends nothing.
type checkConn struct{}

func (checkConn) Publish(context.Context, string, byte, bool, []byte) error { return nil }
func (checkConn) Handle(string, event.Handler) error                        { return nil }
func (checkConn) Prefix() string                                            { return "fieldkit/check" }
func (checkConn) OnConnect(func())                                          {}
