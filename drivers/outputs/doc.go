// Package outputs turns the config sections outputs: and buttons: into
// cue targets and buttons: it validates them strictly (every problem with
// its path, so the loader can name the line) and builds each output with
// the driver for its kind, resolving pins and buses through the board.
//
// Example:
//
//	pins:
//	  cue_lamp: GPIO17
//	outputs:
//	  cue_lamp:  {kind: gpio, pin: cue_lamp, active_low: true}
//	  desk_buzz: {kind: pwm, pin: GPIO18}
//	  bar:       {kind: ws2812, spi: SPI0.0, leds: 30}
//	  puck:      {kind: drv2605, i2c: "1", actuator: erm}
//	  stage:     {kind: wled, topic: wled/stage}
//	  plug:      {kind: tasmota, topic: stage-plug}
//	  relay:     {kind: shelly, topic: shellyplus1-a8032ab12345, channel: 0}
//	  bulb:      {kind: z2m, topic: desk_bulb}
//	  presenter: {kind: wearable, id: anna, fallback: cue_lamp}
//	buttons:
//	  go: {pin: GPIO27, pull: up, debounce: 30ms}
//
// Kinds and their fields:
//
//	gpio, pwm        pin, active_low, pwm_hz, soft_pwm
//	ws2812, apa102   spi, leds, color
//	drv2605          i2c, actuator (erm|lra), library
//	wled, tasmota    topic
//	shelly           topic, channel, dimmable
//	z2m              topic, base
//	wearable         id, fallback, ack_timeout
//
// Each kind is a package of its own (gpiopin, strip, haptic, mqttdevice,
// wearable) with a Config type that validates itself and builds the
// output (the interface is in package kind); an entry is decoded strictly
// into its kind's type. The kinds are registered in one table, in
// kinds.go.
//
// A pin is a logical name the board resolves (cue_lamp, from pins: or the
// board profile) or a line name (GPIO17).
package outputs
