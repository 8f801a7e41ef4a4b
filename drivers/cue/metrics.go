package cue

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the outputs' shared Prometheus series. A nil *Metrics
// records nothing, so outputs built without a registry need no checks.
type Metrics struct {
	confirm   *prometheus.HistogramVec
	endToEnd  *prometheus.HistogramVec
	misses    *prometheus.CounterVec
	fallbacks *prometheus.CounterVec
	pubFail   *prometheus.CounterVec
}

// latencyBuckets span a wired GPIO (sub-millisecond) to a wearable that
// answers on its second send (4 s and more).
var latencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// NewMetrics registers the series on reg; a nil reg gives nil Metrics,
// which record nothing. Registering again on the same reg (outputs built
// anew) shares the series already there.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	if reg == nil || isNilRegistry(reg) {
		return nil, nil
	}
	m := &Metrics{
		confirm: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "fieldkit_cue_confirmation_seconds",
			Help:    "From an output sending a cue to the device confirming it (a wearable's ack), by output and kind.",
			Buckets: latencyBuckets,
		}, []string{"output", "kind"}),
		endToEnd: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "fieldkit_cue_latency_seconds",
			Help:    "From a scene step's planned time to the device confirming the cue, end to end, by output and kind.",
			Buckets: latencyBuckets,
		}, []string{"output", "kind"}),
		misses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fieldkit_wearable_misses_total",
			Help: "Sends of a cue that the wearable did not acknowledge in time (each is sent again once).",
		}, []string{"output"}),
		fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fieldkit_wearable_fallbacks_total",
			Help: "Cues the wearable never acknowledged, so the fallback output played them.",
		}, []string{"output"}),
		pubFail: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fieldkit_device_publish_failures_total",
			Help: "Commands to an MQTT device that the broker did not take (not connected, timeout, refused).",
		}, []string{"output", "kind"}),
	}
	var err error
	if m.confirm, err = register(reg, m.confirm); err != nil {
		return nil, err
	}
	if m.endToEnd, err = register(reg, m.endToEnd); err != nil {
		return nil, err
	}
	if m.misses, err = register(reg, m.misses); err != nil {
		return nil, err
	}
	if m.fallbacks, err = register(reg, m.fallbacks); err != nil {
		return nil, err
	}
	if m.pubFail, err = register(reg, m.pubFail); err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c, or returns the same series registered before.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	switch {
	case err == nil:
		return c, nil
	case errors.As(err, &are):
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, err
}

// isNilRegistry catches a typed nil (*prometheus.Registry)(nil) passed as
// a Registerer.
func isNilRegistry(reg prometheus.Registerer) bool {
	r, ok := reg.(*prometheus.Registry)
	return ok && r == nil
}

// Confirmed records a device's confirmation of a cue sent at sent, and,
// when the cue came from a scene step, the whole way from the step's
// planned time.
func (m *Metrics) Confirmed(output, kind string, planned, sent, confirmed time.Time) {
	if m == nil {
		return
	}
	m.confirm.WithLabelValues(output, kind).Observe(confirmed.Sub(sent).Seconds())
	if !planned.IsZero() && !confirmed.Before(planned) {
		m.endToEnd.WithLabelValues(output, kind).Observe(confirmed.Sub(planned).Seconds())
	}
}

// Missed counts a send that went unacknowledged.
func (m *Metrics) Missed(output string) {
	if m != nil {
		m.misses.WithLabelValues(output).Inc()
	}
}

// FellBack counts a cue handed to the fallback output.
func (m *Metrics) FellBack(output string) {
	if m != nil {
		m.fallbacks.WithLabelValues(output).Inc()
	}
}

// PublishFailed counts a command the broker did not take.
func (m *Metrics) PublishFailed(output, kind string) {
	if m != nil {
		m.pubFail.WithLabelValues(output, kind).Inc()
	}
}

// WithPlanned tells the outputs applying a step when the step was due, so
// that they can measure the cue's latency end to end.
func WithPlanned(ctx context.Context, at time.Time) context.Context {
	return WithStep(ctx, at, nil)
}

// Planned is the step time WithPlanned or WithStep put in ctx (zero when
// none).
func Planned(ctx context.Context) time.Time {
	s, _ := ctx.Value(stepKey{}).(stepInfo)
	return s.planned
}
