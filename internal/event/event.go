// Package event is the vocabulary of messages that the transports
// (internal/mqttc, internal/bus) deliver and that the parts and drivers
// handle. A package that takes messages declares an interface over these
// types and never imports a transport: the agent passes the transport in.
package event

import (
	"context"
	"errors"
)

// Message is one received publish. Topic is absolute (with the box
// prefix) when it came from MQTT.
type Message struct {
	Topic    string
	Payload  []byte
	Retained bool
}

// Handler handles one message. An error is answered on <topic>/error and
// logged; it never stops the connection.
type Handler func(ctx context.Context, m Message) error

// ErrNotConnected is what a transport's Publish returns while its link is
// down, so that a sender can tell "wait for the broker" from a failure.
var ErrNotConnected = errors.New("mqtt: not connected")
