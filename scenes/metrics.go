package scenes

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	lateness *prometheus.HistogramVec
	spread   *prometheus.HistogramVec
	runs     *prometheus.CounterVec
	fires    *prometheus.CounterVec
	configOK prometheus.Gauge
}

// newMetrics registers the engine's metrics on reg (nil: kept private).
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	buckets := []float64{50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 1}
	m := &metrics{
		lateness: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "fieldkit_scene_step_lateness_seconds",
			Help:    "How late each scene step was dispatched after its planned time.",
			Buckets: buckets,
		}, []string{"scene"}),
		spread: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "fieldkit_scene_step_spread_seconds",
			Help:    "Time between the first and last action dispatched for steps due together.",
			Buckets: buckets,
		}, []string{"scene"}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fieldkit_scene_runs_total",
			Help: "Scene runs by how they ended (done, cancelled, failed).",
		}, []string{"scene", "state"}),
		fires: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fieldkit_scene_fires_total",
			Help: "Scene fires by what became of them: started, restarted, queued, ignored_busy, refused_queue_full, refused_rate_limit, unknown_scene.",
		}, []string{"scene", "outcome"}),
		configOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "fieldkit_scene_config_ok",
			Help: "1 when the last scene (re)load succeeded, 0 when it was refused.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.lateness, m.spread, m.runs, m.fires, m.configOK} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
