// Package boards knows the hardware the agent runs on: a profile per board
// (Raspberry Pi Zero 2 W, 3B+, 4B, 5, CM4, generic Linux, and the sim board
// used by the demo and tests), detection from the device tree model
// string, and the mapping from the logical names used in the config
// (cue_lamp, motor, button) to GPIO lines, I2C buses, SPI ports and serial
// devices.
//
// It is the only package that imports periph.io/x/host: drivers get
// periph conn interfaces (gpio.PinIO, i2c.Bus, spi.PortCloser) from a
// Board and never touch the host. Pins are looked up by line name
// ("GPIO17"), which survives the Raspberry Pi 5's chip renumbering; periph
// host reaches them through the GPIO character device there.
package boards
