package gpioout_test

import (
	"context"
	"fmt"
	"log"

	"periph.io/x/conn/v3/gpio/gpiotest"

	"fieldkit/drivers/cue"
	"fieldkit/drivers/gpioout"
)

func Example() {
	// On a box the board hands out the pin: board.Pin("cue_lamp").
	pin := &gpiotest.Pin{N: "GPIO17", Num: 17}
	lamp, err := gpioout.New(pin, &gpioout.Opts{Name: "cue_lamp", ActiveLow: true})
	if err != nil {
		log.Fatal(err)
	}
	defer lamp.Halt()
	if err := lamp.Apply(context.Background(), cue.Action{Do: cue.On}); err != nil {
		log.Fatal(err)
	}
	fmt.Println(pin.Read())
	// Output: Low
}
