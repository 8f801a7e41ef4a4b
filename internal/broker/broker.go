// Package broker runs the embedded MQTT broker (mochi-mqtt) that the agent
// starts when no external broker is configured: the demo, and venues with
// no broker of their own.
package broker

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"fieldkit/internal/deps"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// Options configure the broker.
type Options struct {
	// Listen is host:port; loopback for the demo.
	Listen string
	// Hook decides who may connect and what they may publish or
	// subscribe to; nil allows everyone (only sensible on loopback).
	Hook mqtt.Hook
	// HookConfig is passed to Hook's Init.
	HookConfig any
	// MaxPacket caps a packet's size in bytes (0: 1 MiB), so that one
	// oversized publish cannot eat the box's memory.
	MaxPacket uint32
	// Reserve, when set, keeps the agent's client id to the agent's own
	// account.
	Reserve *Reserved
	Log     *slog.Logger
}

// Broker is a running embedded broker.
type Broker struct {
	srv       *mqtt.Server
	addr      string
	log       *slog.Logger
	closeOnce sync.Once
	closeErr  error
}

// New prepares a broker and binds its listener, so that a port conflict
// is reported at start-up rather than later.
func New(o Options) (*Broker, error) {
	o.Log = deps.Log(o.Log)
	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumPacketSize = o.MaxPacket
	if caps.MaximumPacketSize == 0 {
		caps.MaximumPacketSize = 1 << 20
	}
	srv := mqtt.New(&mqtt.Options{
		Capabilities: caps,
		Logger:       o.Log.With("part", "broker"),
		InlineClient: false,
	})
	hook, hcfg := o.Hook, o.HookConfig
	if hook == nil {
		hook = new(auth.AllowHook)
	}
	if o.Reserve != nil {
		rh, err := newReserveHook(hook, *o.Reserve)
		if err != nil {
			return nil, fmt.Errorf("broker: %w", err)
		}
		hook = rh
	}
	if err := srv.AddHook(hook, hcfg); err != nil {
		return nil, fmt.Errorf("broker: auth hook: %w", err)
	}
	// Bind first, so "address already in use" surfaces here, with the
	// address, rather than inside the broker's own goroutine.
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return nil, fmt.Errorf("broker: listen on %s: %w (is another MQTT broker running? set mqtt.listen or --mqtt-listen)", o.Listen, err)
	}
	tcp := listeners.NewNet("tcp", ln)
	if err := srv.AddListener(tcp); err != nil {
		ln.Close()
		return nil, fmt.Errorf("broker: %w", err)
	}
	return &Broker{srv: srv, addr: ln.Addr().String(), log: o.Log}, nil
}

// Addr is the address the broker listens on.
func (b *Broker) Addr() string { return b.addr }

// Start serves in the background until Close.
func (b *Broker) Start() error {
	if err := b.srv.Serve(); err != nil {
		return fmt.Errorf("broker: %w", err)
	}
	b.log.Info("embedded MQTT broker listening", "addr", b.addr)
	return nil
}

// Run serves until ctx ends.
func (b *Broker) Run(ctx context.Context) error {
	if err := b.Start(); err != nil {
		return err
	}
	<-ctx.Done()
	return b.Close()
}

// Close stops the broker; it may be called more than once (mochi's own
// Close may not).
func (b *Broker) Close() error {
	b.closeOnce.Do(func() { b.closeErr = b.srv.Close() })
	return b.closeErr
}
