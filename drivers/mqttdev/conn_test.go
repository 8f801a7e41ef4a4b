package mqttdev

import (
	"fieldkit/internal/bus"
	"fieldkit/internal/mqttc"
)

// The agent's transports are what the devices declare they need.
var (
	_ Conn   = (*mqttc.Conn)(nil)
	_ Events = (*bus.Bus)(nil)
)
