package drv2605_test

import (
	"fmt"
	"log"

	"periph.io/x/conn/v3/i2c/i2ctest"

	"fieldkit/drivers/cue"
	"fieldkit/drivers/drv2605"
)

func Example() {
	// On a box the board hands out the bus: board.I2C("1").
	bus := &i2ctest.Record{Bus: &i2ctest.Playback{Ops: []i2ctest.IO{
		{Addr: 0x5A, W: []byte{0x00}, R: []byte{0xE0}},
		{Addr: 0x5A, W: []byte{0x01, 0x00}},
		{Addr: 0x5A, W: []byte{0x03, 0x01}},
		{Addr: 0x5A, W: []byte{0x1A}, R: []byte{0x36}},
		{Addr: 0x5A, W: []byte{0x1D}, R: []byte{0xA0}},
		{Addr: 0x5A, W: []byte{0x1A, 0x36}},
		{Addr: 0x5A, W: []byte{0x1D, 0xA0}},
		{Addr: 0x5A, W: []byte{0x0C, 0x00}},
		{Addr: 0x5A, W: []byte{0x04, 47, 0x99, 47, 0x99, 47, 0x00}},
		{Addr: 0x5A, W: []byte{0x0C, 0x01}},
	}}}
	d, err := drv2605.New(bus, &drv2605.DefaultOpts)
	if err != nil {
		log.Fatal(err)
	}
	if err := d.Play(cue.Patterns["go-live"].Effects); err != nil {
		log.Fatal(err)
	}
	fmt.Println(d)
	// Output: DRV2605L{record(90), ERM, library 1}
}
