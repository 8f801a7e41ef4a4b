package scenes

import (
	"os"

	"fieldkit/internal/confutil"
)

// Config is the agent config's "scenes" section:
//
//	scenes:
//	  dir: /etc/fieldkit/scenes   # one scene per *.yaml file
//	  max_payload: 65536          # largest trigger payload accepted, bytes
//	  queue_limit: 8              # fires waiting behind a running "queue" scene
//	  rt_priority: 10             # SCHED_FIFO priority of a running timeline; -1: none
//	  rate_limit: 100             # fires a second one source may send one scene; -1: none
type Config struct {
	Dir        string `yaml:"dir"`
	MaxPayload int    `yaml:"max_payload"`
	QueueLimit int    `yaml:"queue_limit"`
	RTPriority int    `yaml:"rt_priority"`
	RateLimit  int    `yaml:"rate_limit"`
}

// Defaults and bounds of Config.
const (
	DefaultMaxPayload = 64 << 10
	MaxMaxPayload     = 256 << 10 // the MQTT connection refuses more anyway
	DefaultQueueLimit = 8
	DefaultRTPriority = 10
	DefaultRateLimit  = 100
)

// Validate checks the section; the scene files themselves are checked when
// they are loaded (they need the configured outputs).
func (c *Config) Validate(p *confutil.Problems) {
	if c.Dir != "" {
		fi, err := os.Stat(c.Dir)
		switch {
		case err != nil:
			p.Addf("dir", "cannot read the scenes directory: %v", unwrapPath(err))
		case !fi.IsDir():
			p.Addf("dir", "%s is a file; expected a directory of scene files (*.yaml)", c.Dir)
		}
	}
	if c.MaxPayload < 0 || c.MaxPayload > MaxMaxPayload {
		p.Addf("max_payload", "%d: expected 1 to %d bytes (or leave it out for %d)", c.MaxPayload, MaxMaxPayload, DefaultMaxPayload)
	}
	if c.QueueLimit < 0 || c.QueueLimit > 100 {
		p.Addf("queue_limit", "%d: expected 1 to 100 (or leave it out for %d)", c.QueueLimit, DefaultQueueLimit)
	}
	if c.RateLimit < -1 || c.RateLimit > 100000 {
		p.Addf("rate_limit", "%d: expected 1 to 100000 fires a second, or -1 for none (or leave it out for %d)", c.RateLimit, DefaultRateLimit)
	}
	if c.RTPriority < -1 || c.RTPriority > 99 {
		p.Addf("rt_priority", "%d: expected 1 to 99, or -1 for none (or leave it out for %d)", c.RTPriority, DefaultRTPriority)
	}
}

func (c Config) maxPayload() int {
	if c.MaxPayload == 0 {
		return DefaultMaxPayload
	}
	return c.MaxPayload
}

func (c Config) queueLimit() int {
	if c.QueueLimit == 0 {
		return DefaultQueueLimit
	}
	return c.QueueLimit
}

func unwrapPath(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

// rtPriority is the SCHED_FIFO priority for timelines, 0 for none.
func (c Config) rtPriority() int {
	switch c.RTPriority {
	case 0:
		return DefaultRTPriority
	case -1:
		return 0
	}
	return c.RTPriority
}

// rateLimit is how many fires a second one source may send one scene
// (the same number may come at once), 0 for no limit.
func (c Config) rateLimit() int {
	switch c.RateLimit {
	case 0:
		return DefaultRateLimit
	case -1:
		return 0
	}
	return c.RateLimit
}
