package outputs

import (
	"fieldkit/drivers/outputs/gpiopin"
	"fieldkit/drivers/outputs/haptic"
	"fieldkit/drivers/outputs/kind"
	"fieldkit/drivers/outputs/mqttdevice"
	"fieldkit/drivers/outputs/strip"
	"fieldkit/drivers/outputs/wearable"
)

// registry is every output kind: its name in the config, and a new
// config of its own type to decode an entry of that kind into. Adding a
// kind is a package beside these, with its Config, and one line here.
var registry = []struct {
	name string
	new  func() kind.Config
}{
	{"gpio", gpiopin.New},
	{"pwm", gpiopin.New},
	{"ws2812", strip.New},
	{"apa102", strip.New},
	{"drv2605", haptic.New},
	{"wled", mqttdevice.NewWLED},
	{"tasmota", mqttdevice.NewTasmota},
	{"shelly", mqttdevice.NewShelly},
	{"z2m", mqttdevice.NewZ2M},
	{"wearable", wearable.New},
}

// Kinds lists the output kinds, in the registry's order.
var Kinds = kindNames()

func kindNames() []string {
	out := make([]string, len(registry))
	for i, k := range registry {
		out[i] = k.name
	}
	return out
}

// newConfig returns a config of the named kind, or nil for no such kind.
func newConfig(name string) kind.Config {
	for _, k := range registry {
		if k.name == name {
			return k.new()
		}
	}
	return nil
}
