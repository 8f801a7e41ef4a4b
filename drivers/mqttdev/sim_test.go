package mqttdev

import (
	"testing"
	"time"

	"fieldkit/internal/devsim"
)

// sim is a device on the broker that behaves as its kind's docs say
// (internal/devsim).
type sim struct {
	*devsim.Sim
}

func startSim(t *testing.T, url string, o Opts, latency time.Duration) *sim {
	t.Helper()
	s, err := devsim.Start(url, "sim-"+string(o.Kind)+"-"+o.Name,
		devsim.Device{Kind: string(o.Kind), Topic: o.Topic, Base: o.Base, Channel: o.Channel}, latency)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return &sim{s}
}

func (s *sim) setOnline(t *testing.T, up bool) {
	t.Helper()
	if err := s.SetOnline(up); err != nil {
		t.Fatal(err)
	}
}

func (s *sim) commands() []string { return s.Commands() }
