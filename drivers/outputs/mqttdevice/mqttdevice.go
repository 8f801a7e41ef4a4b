// Package mqttdevice is the output kinds that are devices on the MQTT
// broker: wled, tasmota, shelly and z2m (Zigbee2MQTT). Each has its own
// config type, since each reads other keys.
package mqttdevice

import (
	"errors"
	"fmt"
	"time"

	"fieldkit/drivers/cue"
	"fieldkit/drivers/mqttdev"
	"fieldkit/drivers/outputs/kind"
	"fieldkit/internal/confutil"
	"fieldkit/internal/topic"
)

// WLED is a WLED light controller.
type WLED struct {
	// Deadline is how long the device has to confirm a command before
	// it is sent once more and then reported failed (default 1s).
	Deadline time.Duration `yaml:"deadline"`
	// Lead sends the command this long before a scene step's time, so
	// that the device lands with the step's other outputs: a duration,
	// or auto (its median confirmation latency, once measured).
	Lead  cue.Lead `yaml:"lead"`
	Topic string   `yaml:"topic"`
}

// Tasmota is a Tasmota switch, dimmer or RGB bulb.
type Tasmota struct {
	// Deadline is how long the device has to confirm a command before
	// it is sent once more and then reported failed (default 1s).
	Deadline time.Duration `yaml:"deadline"`
	// Lead sends the command this long before a scene step's time, so
	// that the device lands with the step's other outputs: a duration,
	// or auto (its median confirmation latency, once measured).
	Lead  cue.Lead `yaml:"lead"`
	Topic string   `yaml:"topic"`
	// Channel is the relay: 0 (default) is POWER, n is POWER<n>.
	Channel int `yaml:"channel"`
}

// Shelly is a Shelly Gen2 switch or dimmer.
type Shelly struct {
	// Deadline is how long the device has to confirm a command before
	// it is sent once more and then reported failed (default 1s).
	Deadline time.Duration `yaml:"deadline"`
	// Lead sends the command this long before a scene step's time, so
	// that the device lands with the step's other outputs: a duration,
	// or auto (its median confirmation latency, once measured).
	Lead     cue.Lead `yaml:"lead"`
	Topic    string   `yaml:"topic"`
	Channel  int      `yaml:"channel"`
	Dimmable bool     `yaml:"dimmable"`
}

// Z2M is a Zigbee2MQTT light.
type Z2M struct {
	// Deadline is how long the device has to confirm a command before
	// it is sent once more and then reported failed (default 1s).
	Deadline time.Duration `yaml:"deadline"`
	// Lead sends the command this long before a scene step's time, so
	// that the device lands with the step's other outputs: a duration,
	// or auto (its median confirmation latency, once measured).
	Lead  cue.Lead `yaml:"lead"`
	Topic string   `yaml:"topic"`
	// Base is Zigbee2MQTT's base topic (default zigbee2mqtt).
	Base string `yaml:"base"`
	// Effects are the effect values the device exposes (its page in
	// the Zigbee2MQTT device list); a flash cue needs blink.
	Effects []string `yaml:"effects"`
}

// Configs to decode into.
func NewWLED() kind.Config    { return &WLED{} }
func NewTasmota() kind.Config { return &Tasmota{} }
func NewShelly() kind.Config  { return &Shelly{} }
func NewZ2M() kind.Config     { return &Z2M{} }

func (c *WLED) Validate(p *confutil.Problems) {
	checkTopic(p, c.Topic)
	checkDeadline(p, c.Deadline)
}

func (c *Tasmota) Validate(p *confutil.Problems) {
	checkTopic(p, c.Topic)
	checkDeadline(p, c.Deadline)
	// Tasmota has relays POWER1..POWER32.
	if c.Channel < 0 || c.Channel > 32 {
		p.Addf("channel", "channel %d; expected 1-32 (POWER<n>), or none for the first relay", c.Channel)
	}
}

func (c *Shelly) Validate(p *confutil.Problems) {
	checkTopic(p, c.Topic)
	checkDeadline(p, c.Deadline)
	if c.Channel < 0 {
		p.Addf("channel", "channel %d; expected 0 or more", c.Channel)
	}
}

func (c *Z2M) Validate(p *confutil.Problems) {
	checkTopic(p, c.Topic)
	checkDeadline(p, c.Deadline)
	if c.Base != "" && topic.ValidName(c.Base) != nil {
		p.Addf("base", "%q is not a topic", c.Base)
	}
	for i, e := range c.Effects {
		if !kind.NameRE.MatchString(e) {
			p.At(fmt.Sprintf("effects[%d]", i)).Addf("", "%q: expected an effect value the device exposes (blink, breathe, ...)", e)
		}
	}
}

func checkDeadline(p *confutil.Problems, d time.Duration) {
	if d != 0 && (d < 50*time.Millisecond || d > 30*time.Second) {
		p.Addf("deadline", "%v: expected 50ms-30s (default 1s)", d)
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
	return build(env, c.Deadline, c.Lead, &mqttdev.Opts{Name: name, Topic: c.Topic})
}

func (c *Tasmota) Build(name string, env kind.Env) (cue.Target, error) {
	return build(env, c.Deadline, c.Lead, &mqttdev.Opts{Name: name, Topic: c.Topic, Channel: c.Channel})
}

func (c *Shelly) Build(name string, env kind.Env) (cue.Target, error) {
	return build(env, c.Deadline, c.Lead, &mqttdev.Opts{Name: name, Topic: c.Topic, Channel: c.Channel, Dimmable: c.Dimmable})
}

func (c *Z2M) Build(name string, env kind.Env) (cue.Target, error) {
	return build(env, c.Deadline, c.Lead, &mqttdev.Opts{Name: name, Topic: c.Topic, Base: c.Base, Effects: c.Effects})
}

func build(env kind.Env, deadline time.Duration, lead cue.Lead, o *mqttdev.Opts) (cue.Target, error) {
	if env.MQTT == nil {
		return nil, errors.New("an MQTT device needs the MQTT connection (mqtt: in the config)")
	}
	o.Kind, o.Clock, o.Log, o.Metrics = mqttdev.Kind(env.Kind), env.Clock, env.Log, env.Metrics
	o.Deadline, o.Bus, o.Lead = deadline, env.Bus, lead
	return mqttdev.NewDevice(env.MQTT, o)
}
