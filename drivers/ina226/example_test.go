package ina226_test

import (
	"fmt"
	"log"

	"periph.io/x/conn/v3/i2c/i2ctest"
	"periph.io/x/conn/v3/physic"

	"fieldkit/drivers/ina226"
)

func Example() {
	// On a board this is the bus from the board profile; here a playback
	// of what a 26 V V-mount rig at 25.2 V drawing 2 A answers.
	bus := &i2ctest.Playback{Ops: []i2ctest.IO{
		{Addr: 0x40, W: []byte{0xFE}, R: []byte{0x54, 0x49}},
		{Addr: 0x40, W: []byte{0xFF}, R: []byte{0x22, 0x60}},
		{Addr: 0x40, W: []byte{0x00, 0x45, 0x27}},
		{Addr: 0x40, W: []byte{0x05, 0x0A, 0x00}},
		{Addr: 0x40, W: []byte{0x01}, R: []byte{0x06, 0x40}}, // 1600 × 2.5 µV = 4 mV
		{Addr: 0x40, W: []byte{0x02}, R: []byte{0x4E, 0xC0}}, // 20160 × 1.25 mV
		{Addr: 0x40, W: []byte{0x04}, R: []byte{0x07, 0xD0}}, // 2000 × 1 mA
		{Addr: 0x40, W: []byte{0x03}, R: []byte{0x07, 0xE0}}, // 2016 × 25 mW
	}}
	opts := ina226.DefaultOpts
	opts.ShuntResistor = 2 * physic.MilliOhm
	opts.MaxCurrent = 32768 * physic.MilliAmpere // a 1 mA current LSB
	dev, err := ina226.New(bus, &opts)
	if err != nil {
		log.Fatal(err)
	}
	pm, err := dev.Sense()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(pm.Voltage, pm.Current, pm.Power)
	// Output: 25.200V 2A 50.400W
}
