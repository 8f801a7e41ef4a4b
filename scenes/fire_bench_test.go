package scenes

import (
	"context"
	"testing"

	"fieldkit/internal/clock"
)

// sendMQTT is fakeMQTT with Send, as *mqttc.Conn has it.
type sendMQTT struct{ *fakeMQTT }

func (s sendMQTT) Send(t string, qos byte, retained bool, payload []byte) func(context.Context) error {
	return func(context.Context) error { return nil }
}

// BenchmarkFireRelay is the engine's share of a relayed cue: a fire of a
// scene whose one step is a publish, due at once.
func BenchmarkFireRelay(b *testing.B) {
	dir := b.TempDir()
	writeFiles(&testing.T{}, dir, map[string]string{"relay.yaml": "name: relay\npolicy: queue\nsteps:\n  - {at: 0s, publish: {topic: out, passthrough: true}}\n"})
	rec := &recorder{clk: clock.Real()}
	e, err := New(Config{Dir: dir, RateLimit: -1}, Deps{Targets: newTargets(rec), MQTT: sendMQTT{newFakeMQTT()}, Log: quietLog()})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = e.Run(ctx) }()
	defer func() { cancel(); <-done }()
	for {
		e.mu.Lock()
		ok := e.ctx != nil
		e.mu.Unlock()
		if ok {
			break
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := e.Fire("relay", "bench", []byte(`{}`)); err != nil {
			b.Fatal(err)
		}
		for {
			e.mu.Lock()
			idle := e.slots["relay"].cur == nil
			e.mu.Unlock()
			if idle {
				break
			}
		}
	}
}
