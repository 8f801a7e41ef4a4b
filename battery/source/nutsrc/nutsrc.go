// Package nutsrc is the battery source nut: a UPS that upsd (Network
// UPS Tools) watches, polled over its TCP protocol.
package nutsrc

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"fieldkit/battery/source"
	"fieldkit/drivers/nut"
	"fieldkit/drivers/power"
	"fieldkit/internal/clock"
	"fieldkit/internal/confutil"
	"fieldkit/internal/secret"
)

// Config is a UPS rig.
type Config struct {
	Host         string `yaml:"host"`
	Port         int    `yaml:"port"`
	UPS          string `yaml:"ups"`
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"password_file"`
}

var upsNameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// New is a config to decode into.
func New() source.Config { return &Config{} }

func (c *Config) Validate(p *confutil.Problems) {
	if c.Host == "" {
		p.Addf("host", "missing; expected the upsd host, e.g. 127.0.0.1")
	} else if strings.ContainsAny(c.Host, " /:") && net.ParseIP(c.Host) == nil {
		p.Addf("host", "%q: expected a host name or IP address without a port (set port separately)", c.Host)
	}
	if c.Port < 0 || c.Port > 65535 {
		p.Addf("port", "%d: expected 1-65535 (default 3493)", c.Port)
	}
	if !upsNameRE.MatchString(c.UPS) {
		p.Addf("ups", "%q: expected the UPS name as upsd knows it (upsc -l), letters, digits, '_', '.', '-'", c.UPS)
	}
	if strings.ContainsAny(c.Username, " \r\n\"") {
		p.Addf("username", "must not contain spaces, quotes or line breaks")
	}
	if c.PasswordFile != "" {
		if c.Username == "" {
			p.Addf("password_file", "a password without a username; set username too")
		}
		if _, err := os.Stat(c.PasswordFile); err != nil {
			p.Addf("password_file", "cannot read %s: %v", c.PasswordFile, err)
		}
	}
}

// Pack: the UPS reports its charge, so no pack need be described.
func (c *Config) Pack(s source.PackSpec) (power.Pack, error) {
	return source.ResolvePack(s, source.PackDefaults{ReportsCharge: true})
}

// Poll: upsd itself polls the UPS every few seconds.
func (c *Config) Poll() time.Duration { return 10 * time.Second }

func (c *Config) Open(env source.Env) (any, error) {
	return &Source{Config: *c, Clock: env.Clock}, nil
}

// Source polls a UPS through upsd.
type Source struct {
	Config Config
	Clock  clock.Clock

	mu   sync.Mutex
	c    *nut.Client
	pass string
}

func (s *Source) addr() string {
	port := s.Config.Port
	if port == 0 {
		port = nut.DefaultPort
	}
	return fmt.Sprintf("%s:%d", s.Config.Host, port)
}

func (s *Source) Poll(ctx context.Context) (power.Sample, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.c == nil {
		if s.Config.PasswordFile != "" && s.pass == "" {
			p, err := secret.Read(s.Config.PasswordFile)
			if err != nil {
				return power.Sample{}, fmt.Errorf("nut: %w", err)
			}
			s.pass = p
		}
		c, err := nut.Dial(ctx, s.addr(), nut.Opts{Username: s.Config.Username, Password: s.pass})
		if err != nil {
			return power.Sample{}, err
		}
		s.c = c
	}
	vars, err := s.c.Vars(ctx, s.Config.UPS)
	if err != nil {
		var se *nut.ServerError
		if !errors.As(err, &se) {
			s.c.Close() // the connection is in an unknown state
			s.c = nil
		}
		return power.Sample{}, fmt.Errorf("nut %s@%s: %w", s.Config.UPS, s.addr(), err)
	}
	return Sample(s.Clock.Now(), vars)
}

// Sample maps upsd variables onto a sample.
func Sample(at time.Time, vars map[string]string) (power.Sample, error) {
	smp := power.NewSample(at)
	num := func(name string) (float64, bool, error) {
		v, ok := vars[name]
		if !ok {
			return 0, false, nil
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return 0, false, fmt.Errorf("nut: %s = %q is not a number", name, v)
		}
		return f, true, nil
	}
	charge, ok, err := num("battery.charge")
	if err != nil {
		return smp, err
	}
	if !ok {
		return smp, fmt.Errorf("nut: the UPS does not report battery.charge")
	}
	smp.Percent = charge
	if rt, ok, err := num("battery.runtime"); err != nil {
		return smp, err
	} else if ok && rt >= 0 {
		smp.Runtime = time.Duration(rt) * time.Second
	}
	if v, ok, _ := num("battery.voltage"); ok {
		smp.Volts = v
	}
	if w, ok, _ := num("ups.realpower"); ok {
		smp.Watts = w
	}
	smp.Status = vars["ups.status"]
	smp.OnMains, smp.Floor, _ = Verdict(smp.Status)
	return smp, nil
}

func (s *Source) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.c == nil {
		return nil
	}
	err := s.c.Close()
	s.c = nil
	return err
}
