package battery

import (
	"fieldkit/battery/source"
	"fieldkit/battery/source/ina"
	"fieldkit/battery/source/mqttsrc"
	"fieldkit/battery/source/nutsrc"
	"fieldkit/battery/source/sim"
)

// registry is every battery source: its name in the config, and a new
// config of its own type to decode a rig's source keys into. Adding a
// source is a package under source/, with its Config, and one line here.
var registry = []struct {
	name string
	new  func() source.Config
}{
	{KindINA219, ina.New},
	{KindINA226, ina.New},
	{KindMQTT, mqttsrc.New},
	{KindNUT, nutsrc.New},
	{KindSim, sim.New},
}

// Sources lists the source names, in the registry's order.
var Sources = sourceNames()

func sourceNames() []string {
	out := make([]string, len(registry))
	for i, s := range registry {
		out[i] = s.name
	}
	return out
}

func newSourceConfig(name string) source.Config {
	for _, s := range registry {
		if s.name == name {
			return s.new()
		}
	}
	return nil
}
