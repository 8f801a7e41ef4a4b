// Package mqttdevice is the output kinds that are devices on the MQTT
// broker: wled, tasmota, shelly and z2m (Zigbee2MQTT). Each has its own
// config type, since each reads other keys.
package mqttdevice

import (
	"errors"

	"fieldkit/drivers/cue"
	"fieldkit/drivers/mqttdev"
	"fieldkit/drivers/outputs/kind"
	"fieldkit/internal/confutil"
	"fieldkit/internal/topic"
)

// WLED is a WLED light controller.
type WLED struct {
	Topic string `yaml:"topic"`
}

// Tasmota is a Tasmota switch or dimmer.
type Tasmota struct {
	Topic string `yaml:"topic"`
}

// Shelly is a Shelly Gen2 switch or dimmer.
type Shelly struct {
	Topic    string `yaml:"topic"`
	Channel  int    `yaml:"channel"`
	Dimmable bool   `yaml:"dimmable"`
}

// Z2M is a Zigbee2MQTT light.
type Z2M struct {
	Topic string `yaml:"topic"`
	// Base is Zigbee2MQTT's base topic (default zigbee2mqtt).
	Base string `yaml:"base"`
}

// Configs to decode into.
func NewWLED() kind.Config    { return &WLED{} }
func NewTasmota() kind.Config { return &Tasmota{} }
func NewShelly() kind.Config  { return &Shelly{} }
func NewZ2M() kind.Config     { return &Z2M{} }

func (c *WLED) Validate(p *confutil.Problems)    { checkTopic(p, c.Topic) }
func (c *Tasmota) Validate(p *confutil.Problems) { checkTopic(p, c.Topic) }

func (c *Shelly) Validate(p *confutil.Problems) {
	checkTopic(p, c.Topic)
	if c.Channel < 0 {
		p.Addf("channel", "channel %d; expected 0 or more", c.Channel)
	}
}

func (c *Z2M) Validate(p *confutil.Problems) {
	checkTopic(p, c.Topic)
	if c.Base != "" && topic.ValidName(c.Base) != nil {
		p.Addf("base", "%q is not a topic", c.Base)
	}
}

func checkTopic(p *confutil.Problems, t string) {
	if t == "" {
		p.Addf("", "missing topic: the device's MQTT topic (e.g. topic: wled/stage)")
	} else if err := topic.ValidName(t); err != nil {
		p.Addf("topic", "%q: %v", t, err)
	}
}

func (c *WLED) Build(name string, env kind.Env) (cue.Target, error) {
	return build(env, &mqttdev.Opts{Name: name, Topic: c.Topic})
}

func (c *Tasmota) Build(name string, env kind.Env) (cue.Target, error) {
	return build(env, &mqttdev.Opts{Name: name, Topic: c.Topic})
}

func (c *Shelly) Build(name string, env kind.Env) (cue.Target, error) {
	return build(env, &mqttdev.Opts{Name: name, Topic: c.Topic, Channel: c.Channel, Dimmable: c.Dimmable})
}

func (c *Z2M) Build(name string, env kind.Env) (cue.Target, error) {
	return build(env, &mqttdev.Opts{Name: name, Topic: c.Topic, Base: c.Base})
}

func build(env kind.Env, o *mqttdev.Opts) (cue.Target, error) {
	if env.MQTT == nil {
		return nil, errors.New("an MQTT device needs the MQTT connection (mqtt: in the config)")
	}
	o.Kind, o.Clock, o.Log, o.Metrics = mqttdev.Kind(env.Kind), env.Clock, env.Log, env.Metrics
	return mqttdev.NewDevice(env.MQTT, o)
}
