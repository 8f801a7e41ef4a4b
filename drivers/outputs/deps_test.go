package outputs

import (
	"fieldkit/drivers/mqttdev"
	"fieldkit/internal/bus"
	"fieldkit/internal/mqttc"
)

// The agent's transports are what Build declares it needs.
var (
	_ Events       = (*bus.Bus)(nil)
	_ mqttdev.Conn = (*mqttc.Conn)(nil)
)
