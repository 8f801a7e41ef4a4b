// Package wearable is the output kind wearable: a fieldkit wearable that
// buzzes its presenter over MQTT, with an output to fall back on when it
// does not acknowledge a cue.
package wearable

import (
	"errors"
	"time"

	"fieldkit/drivers/cue"
	"fieldkit/drivers/mqttdev"
	"fieldkit/drivers/outputs/kind"
	"fieldkit/internal/confutil"
)

// Config is a wearable.
type Config struct {
	ID         string        `yaml:"id"`
	Fallback   string        `yaml:"fallback"`
	AckTimeout time.Duration `yaml:"ack_timeout"`
}

// New is a config to decode into.
func New() kind.Config { return &Config{} }

// Refers names the fallback output.
func (c *Config) Refers() string { return c.Fallback }

func (c *Config) Validate(p *confutil.Problems) {
	if c.ID != "" && !kind.NameRE.MatchString(c.ID) {
		p.Addf("id", "wearable id %q: expected 1-32 lower-case letters, digits, '_' or '-'", c.ID)
	}
	if c.AckTimeout != 0 && (c.AckTimeout < 100*time.Millisecond || c.AckTimeout > 30*time.Second) {
		p.Addf("ack_timeout", "%v: expected 100ms-30s (default 2s)", c.AckTimeout)
	}
}

func (c *Config) Build(name string, env kind.Env) (cue.Target, error) {
	if env.MQTT == nil {
		return nil, errors.New("a wearable needs the MQTT connection (mqtt: in the config)")
	}
	var fb cue.Target
	if c.Fallback != "" {
		var err error
		if fb, err = env.Output(c.Fallback); err != nil {
			return nil, err
		}
	}
	return mqttdev.NewWearable(env.MQTT, &mqttdev.WearableOpts{Name: name, ID: c.ID, Fallback: fb,
		AckTimeout: c.AckTimeout, Bus: env.Bus, Clock: env.Clock, Log: env.Log, Metrics: env.Metrics})
}
