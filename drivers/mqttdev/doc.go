// Package mqttdev drives cue outputs that live on the MQTT broker: WLED
// light controllers, Tasmota and Shelly Gen2 switches and dimmers,
// Zigbee2MQTT lights, and fieldkit wearables that buzz a presenter.
//
// Lights and switches hold a desired state that is published as the
// device's own command payloads (golden-tested per kind under testdata)
// and published again after every broker reconnect. Each also listens to
// what the device says of itself, on the topics its firmware documents:
// availability (Tasmota tele/<t>/LWT, WLED <t>/status, Shelly <id>/online,
// Zigbee2MQTT <base>/<name>/availability) and state or replies (Tasmota
// stat/<t>/RESULT and POWER<n>, WLED <t>/g and <t>/v, the Shelly RPC
// reply on <src>/rpc, the Zigbee2MQTT state echo). A command not
// confirmed within the output's deadline is sent once more and then
// reported failed (Opts.OnResult, and cue/<output>/alert on the bus), as
// is one a Shelly answers with an error object; a device that comes back
// online is told the state it should have now. A wearable cue is a
// one-shot command on <prefix>/cue/<wearable>/cmd, QoS 1, never retained,
// that the wearable acknowledges on .../ack; without an ack in 2 s it is
// sent once more with the same id, and without an ack to that either the
// configured fallback output (a cue lamp) plays the cue and an alert
// event goes out on the bus (cue/<wearable>/alert).
package mqttdev

import (
	"context"

	"fieldkit/internal/event"
)

// Conn is the part of the agent's MQTT connection (internal/mqttc.Conn)
// that the devices use. Topics are absolute.
type Conn interface {
	Publish(ctx context.Context, topic string, qos byte, retained bool, payload []byte) error
	Handle(filter string, h event.Handler) error
	Prefix() string
	OnConnect(f func())
}

// Events is where a wearable's alerts go: the agent's in-process bus
// (internal/bus.Bus), whose topics are relative to the box prefix.
type Events interface {
	Publish(topic string, payload []byte)
}
