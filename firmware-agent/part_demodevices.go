package main

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"fieldkit/drivers/outputs/mqttdevice"
	"fieldkit/drivers/outputs/wearable"
	"fieldkit/firmware-agent/config"
	"fieldkit/internal/devsim"
)

// demoLatency is how long each simulated kind takes from a command to its
// answer: about what such devices take on a venue's Wi-Fi, or, for a
// Zigbee light, over its mesh and the Zigbee2MQTT bridge.
var demoLatency = map[string]time.Duration{
	"wled":     40 * time.Millisecond,
	"tasmota":  25 * time.Millisecond,
	"shelly":   30 * time.Millisecond,
	"z2m":      60 * time.Millisecond,
	"wearable": 50 * time.Millisecond,
}

// demoDevice is one simulated device: a light or switch (dev), or a
// wearable (wearable is its id).
type demoDevice struct {
	output   string
	dev      devsim.Device
	wearable string
	latency  time.Duration
}

// demoDevices run simulated devices on the embedded broker in place of
// the demo's MQTT outputs (lights, switches, the presenter's wearable).
// Outputs confirm each command by what the device answers; with nothing
// behind them, every demo scene would end failed. Only the demo builds
// this part: a show's config names real devices.
type demoDevices struct {
	url, prefix string
	devs        []demoDevice
	log         *slog.Logger
}

// newDemoDevices lists the devices to simulate for cfg's MQTT outputs on
// the broker at addr (host:port).
func newDemoDevices(cfg *config.Config, addr string, log *slog.Logger) *demoDevices {
	d := &demoDevices{url: "tcp://" + addr, prefix: cfg.MQTT.Prefix, log: log}
	names := make([]string, 0, len(cfg.Cues.Outputs))
	for n := range cfg.Cues.Outputs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		o := cfg.Cues.Outputs[n]
		x := demoDevice{output: n, latency: demoLatency[o.Kind]}
		switch c := o.Config.(type) {
		case *mqttdevice.WLED:
			x.dev = devsim.Device{Kind: o.Kind, Topic: c.Topic}
		case *mqttdevice.Tasmota:
			x.dev = devsim.Device{Kind: o.Kind, Topic: c.Topic, Channel: c.Channel}
		case *mqttdevice.Shelly:
			x.dev = devsim.Device{Kind: o.Kind, Topic: c.Topic, Channel: c.Channel}
		case *mqttdevice.Z2M:
			x.dev = devsim.Device{Kind: o.Kind, Topic: c.Topic, Base: c.Base}
		case *wearable.Config:
			// The wearable driver's default id is the output's name.
			x.wearable = c.ID
			if x.wearable == "" {
				x.wearable = n
			}
		default:
			continue
		}
		d.devs = append(d.devs, x)
	}
	return d
}

func (d *demoDevices) Name() string { return "demo-devices" }

// Run connects the simulated devices and keeps them until ctx ends.
func (d *demoDevices) Run(ctx context.Context) error {
	var closers []func()
	defer func() {
		for _, c := range closers {
			c()
		}
	}()
	names := make([]string, 0, len(d.devs))
	for _, x := range d.devs {
		id := "demo-sim-" + x.output
		if x.wearable != "" {
			w, err := devsim.StartWearable(d.url, id, d.prefix, x.wearable, x.latency)
			if err != nil {
				return fmt.Errorf("simulated wearable for output %s: %w", x.output, err)
			}
			closers = append(closers, w.Close)
		} else {
			s, err := devsim.Start(d.url, id, x.dev, x.latency)
			if err != nil {
				return fmt.Errorf("simulated device for output %s: %w", x.output, err)
			}
			closers = append(closers, s.Close)
		}
		names = append(names, x.output)
	}
	if len(names) > 0 {
		d.log.Info("demo: the MQTT devices behind these outputs are simulated on the embedded broker; a show's config drives real ones",
			"outputs", strings.Join(names, ", "))
	}
	<-ctx.Done()
	return nil
}
