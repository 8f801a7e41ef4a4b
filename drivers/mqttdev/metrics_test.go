package mqttdev

import (
	"context"
	"fieldkit/internal/testutil"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"fieldkit/drivers/cue"
	"fieldkit/internal/clock"
)

func metricsFor(t *testing.T) (*cue.Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := cue.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	return m, reg
}

// family finds name{output=...} in reg.
func family(t *testing.T, reg *prometheus.Registry, name, output string) *dto.Metric {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "output" && l.GetValue() == output {
					return m
				}
			}
		}
	}
	return nil
}

// A wearable's ack is its confirmation: observed from the send, and from
// the scene step's planned time end to end; silence counts two misses
// and a fallback.
func TestWearableMetrics(t *testing.T) {
	met, reg := metricsFor(t)
	fc := newFakeConn()
	clk := clock.NewFake(time.Date(2026, 5, 1, 18, 0, 0, 0, time.UTC))
	n := 0
	w, err := NewWearable(fc, &WearableOpts{Name: "presenter", ID: "anna", Fallback: &lamp{}, Clock: clk, Metrics: met,
		NewID: func() string { n++; return fmt.Sprintf("c%d", n) }})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()

	// A step planned 20 ms before it was applied, acked 1.5 s later.
	ctx := cue.WithPlanned(context.Background(), clk.Now().Add(-20*time.Millisecond))
	if err := w.Apply(ctx, cue.Action{Do: cue.Haptic, Pattern: "go-live"}); err != nil {
		t.Fatal(err)
	}
	fc.waitPubs(t, 1)
	clk.WaitForTimers(1, 5*time.Second)
	clk.Advance(1500 * time.Millisecond)
	if err := fc.deliver("fieldkit/box1/cue/anna/ack", `{"id":"c1"}`); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 5*time.Second, "the confirmation observed", func() bool {
		return family(t, reg, "fieldkit_cue_confirmation_seconds", "presenter") != nil
	})
	h := family(t, reg, "fieldkit_cue_confirmation_seconds", "presenter").GetHistogram()
	if h.GetSampleCount() != 1 || h.GetSampleSum() != 1.5 {
		t.Fatalf("confirmation histogram: %d samples, sum %v; want 1, 1.5", h.GetSampleCount(), h.GetSampleSum())
	}
	e2e := family(t, reg, "fieldkit_cue_latency_seconds", "presenter").GetHistogram()
	if e2e.GetSampleCount() != 1 || e2e.GetSampleSum() != 1.52 {
		t.Fatalf("end-to-end histogram: %d samples, sum %v; want 1, 1.52", e2e.GetSampleCount(), e2e.GetSampleSum())
	}

	// Silence: two sends unanswered, then the fallback.
	if err := w.Apply(context.Background(), cue.Action{Do: cue.Haptic, Pattern: "go-live"}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		clk.WaitForTimers(1, 5*time.Second)
		clk.Advance(DefaultAckTimeout)
	}
	testutil.WaitFor(t, 5*time.Second, "the fallback counted", func() bool {
		m := family(t, reg, "fieldkit_wearable_fallbacks_total", "presenter")
		return m != nil && m.GetCounter().GetValue() == 1
	})
	if m := family(t, reg, "fieldkit_wearable_misses_total", "presenter"); m.GetCounter().GetValue() != 2 {
		t.Fatalf("misses %v, want 2", m.GetCounter().GetValue())
	}
	// A cue without a planned time adds no end-to-end sample.
	if c := family(t, reg, "fieldkit_cue_latency_seconds", "presenter").GetHistogram().GetSampleCount(); c != 1 {
		t.Fatalf("end-to-end samples %d, want 1", c)
	}
}

// A device command the broker does not take is counted.
func TestDevicePublishFailureCounted(t *testing.T) {
	met, reg := metricsFor(t)
	fc := newFakeConn()
	fc.down = true
	d, err := NewDevice(fc, &Opts{Name: "spot", Kind: Tasmota, Topic: "spot1", Metrics: met})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Apply(context.Background(), cue.Action{Do: cue.On}); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 5*time.Second, "the failure counted", func() bool {
		m := family(t, reg, "fieldkit_device_publish_failures_total", "spot")
		return m != nil && m.GetCounter().GetValue() >= 1
	})
}
