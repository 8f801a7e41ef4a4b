package venue

import (
	"time"

	"fieldkit/internal/confutil"
	"fieldkit/internal/topic"
)

// Config is the agent config's "venue" section; left out, the box is on
// its own and nothing of this package runs:
//
//	venue:
//	  id: hall-a            # the venue; every box of it names the same id
//	  role: stage           # shown to the crews (stage, pickup, entrance, ...)
//	  reference: true       # this box is the venue's time reference
//	  lead: 200ms           # how far ahead a venue scene's start is set
//	  max_offset: 20ms      # the pre-show check fails beyond this clock offset
//	  clock_every: 2s       # how often the clock is compared with the reference
//	  report_wait: 3s       # how long the venue report waits for members
//	  prefix: fieldkit/venue/hall-a
type Config struct {
	ID         string        `yaml:"id"`
	Role       string        `yaml:"role"`
	Reference  bool          `yaml:"reference"`
	Lead       time.Duration `yaml:"lead"`
	MaxOffset  time.Duration `yaml:"max_offset"`
	ClockEvery time.Duration `yaml:"clock_every"`
	ReportWait time.Duration `yaml:"report_wait"`
	Prefix     string        `yaml:"prefix"`
}

// Defaults and bounds of Config.
const (
	DefaultLead       = 200 * time.Millisecond
	DefaultMaxOffset  = 20 * time.Millisecond
	DefaultClockEvery = 2 * time.Second
	DefaultReportWait = 3 * time.Second
	// Window is how many clock samples are kept; the one with the
	// shortest round trip is the estimate (its path is the least
	// queued, so its offset the least skewed by one-way delay).
	Window = 8
)

// WithDefaults fills what was left out.
func (c Config) WithDefaults() Config {
	if c.Lead == 0 {
		c.Lead = DefaultLead
	}
	if c.MaxOffset == 0 {
		c.MaxOffset = DefaultMaxOffset
	}
	if c.ClockEvery == 0 {
		c.ClockEvery = DefaultClockEvery
	}
	if c.ReportWait == 0 {
		c.ReportWait = DefaultReportWait
	}
	if c.Prefix == "" {
		c.Prefix = "fieldkit/venue/" + c.ID
	}
	return c
}

// Validate checks the section, paths relative to it.
func (c *Config) Validate(p *confutil.Problems) {
	if err := checkID("venue id", c.ID); err != nil {
		p.Addf("id", "%v; every box of the venue names the same id", err)
	}
	if err := checkText("role", c.Role, 64); err != nil {
		p.Addf("role", "%v", err)
	}
	between := func(key string, d, lo, hi time.Duration) {
		if d != 0 && (d < lo || d > hi) {
			p.Addf(key, "%v: expected %v to %v", d, lo, hi)
		}
	}
	between("lead", c.Lead, 20*time.Millisecond, 10*time.Second)
	between("max_offset", c.MaxOffset, time.Millisecond, time.Second)
	between("clock_every", c.ClockEvery, 100*time.Millisecond, time.Minute)
	between("report_wait", c.ReportWait, 100*time.Millisecond, time.Minute)
	if c.Prefix != "" {
		if err := topic.ValidName(c.Prefix); err != nil {
			p.Addf("prefix", "%q: %v", c.Prefix, err)
		}
	}
}
