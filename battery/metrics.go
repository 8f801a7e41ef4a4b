package battery

import (
	"math"

	"github.com/prometheus/client_golang/prometheus"

	"fieldkit/drivers/power"
)

type metrics struct {
	charge, volts, watts, tte, level, stale *prometheus.GaugeVec
	errors                                  *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	g := func(name, help string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, []string{"rig"})
	}
	m := &metrics{
		// Ratios are 0-1 and quantities in base units, as Prometheus's
		// naming conventions ask.
		charge: g("fieldkit_battery_charge_ratio", "Estimated charge of the rig's pack, 0 to 1 (NaN until known)."),
		volts:  g("fieldkit_battery_voltage_volts", "Terminal voltage of the rig's pack under load."),
		watts:  g("fieldkit_battery_power_watts", "EWMA of the rig's power draw."),
		tte:    g("fieldkit_battery_time_to_empty_seconds", "Estimated time to empty (NaN while calculating)."),
		level:  g("fieldkit_battery_alert_level", "Alert level: 0 unknown, 1 ok, 2 warn, 3 critical, 4 swap now."),
		stale:  g("fieldkit_battery_stale", "1 while the rig's source has stopped reporting."),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fieldkit_battery_read_errors_total",
			Help: "Failed reads of the rig's source."}, []string{"rig"}),
	}
	for _, c := range []prometheus.Collector{m.charge, m.volts, m.watts, m.tte, m.level, m.stale, m.errors} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (w *Watch) observe(st State, lvl power.Level) {
	m := w.metrics
	if m == nil {
		return
	}
	val := func(p *float64) float64 {
		if p == nil {
			return math.NaN()
		}
		return *p
	}
	m.charge.WithLabelValues(st.Rig).Set(val(st.Percent) / 100)
	m.volts.WithLabelValues(st.Rig).Set(val(st.Volts))
	m.watts.WithLabelValues(st.Rig).Set(val(st.Watts))
	if st.TTES != nil {
		m.tte.WithLabelValues(st.Rig).Set(float64(*st.TTES))
	} else {
		m.tte.WithLabelValues(st.Rig).Set(math.NaN())
	}
	m.level.WithLabelValues(st.Rig).Set(float64(lvl))
	stale := 0.0
	if st.Stale {
		stale = 1
	}
	m.stale.WithLabelValues(st.Rig).Set(stale)
}
