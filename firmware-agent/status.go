package main

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"fieldkit/internal/doctor"
	"fieldkit/internal/health"
	"fieldkit/internal/httpapi"
	"fieldkit/internal/mqttc"
)

// Status is the body of GET /api/status.
type Status struct {
	Box      string         `json:"box"`
	Version  string         `json:"version"`
	Board    BoardStatus    `json:"board"`
	Started  time.Time      `json:"started"`
	UptimeS  float64        `json:"uptime_s"`
	Demo     bool           `json:"demo"`
	MQTT     MQTTStatus     `json:"mqtt"`
	Parts    []health.Part  `json:"parts"`
	Sections map[string]any `json:"sections,omitempty"`
}

// BoardStatus describes the board and its hardware state.
type BoardStatus struct {
	Profile string `json:"profile"`
	Model   string `json:"model"`
	State   any    `json:"state"`
}

// MQTTStatus is the broker link.
type MQTTStatus struct {
	Connected bool   `json:"connected"`
	Embedded  bool   `json:"embedded"`
	Broker    string `json:"broker"`
	Prefix    string `json:"prefix"`
	// Reason says why the link is down.
	Reason   string         `json:"reason,omitempty"`
	Instance mqttc.Instance `json:"instance"`
	// Duplicate is another agent seen with this box id.
	Duplicate *mqttc.Duplicate `json:"duplicate,omitempty"`
}

func (a *app) statusNow() Status {
	s := Status{
		Box: a.cfg.Box, Version: statusVersion(), Started: a.started.UTC(), UptimeS: time.Since(a.started).Seconds(),
		Demo:  a.cfg.File == "",
		Board: BoardStatus{Profile: a.board.Profile().Name, Model: a.board.Model(), State: a.board.Status()},
		MQTT:  a.mqttStatus(),
		Parts: a.health.Snapshot(),
	}
	if len(a.status) > 0 {
		s.Sections = map[string]any{}
		for k, f := range a.status {
			s.Sections[k] = f()
		}
	}
	return s
}

func (a *app) mqttStatus() MQTTStatus {
	st := a.mqtt.Status()
	return MQTTStatus{Connected: st.Connected, Embedded: a.broker != nil, Broker: a.brokerAddr(), Prefix: a.cfg.MQTT.Prefix,
		Reason: st.Reason, Instance: a.mqtt.Instance(), Duplicate: st.Duplicate}
}

func (a *app) brokerAddr() string {
	if a.broker != nil {
		return "tcp://" + a.broker.Addr()
	}
	return a.cfg.MQTT.URL
}

func (a *app) routes() {
	r := a.router
	r.HandleFunc("GET /healthz", httpapi.Public, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok\n"))
	})
	r.HandleFunc("GET /api/status", httpapi.Crew, func(w http.ResponseWriter, _ *http.Request) {
		httpapi.WriteJSON(w, http.StatusOK, a.statusNow())
	})
	r.HandleFunc("GET /api/preflight", httpapi.Crew, func(w http.ResponseWriter, req *http.Request) {
		rs := doctor.Run(req.Context(), a.checks, 3*time.Second)
		httpapi.WriteJSON(w, http.StatusOK, map[string]any{"status": doctor.Worst(rs), "checks": rs})
	})
	r.Handle("GET /metrics", httpapi.Crew, promhttp.HandlerFor(a.metrics, promhttp.HandlerOpts{}))
}

func (a *app) registerMetrics() {
	a.metrics.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "fieldkit_mqtt_connected", Help: "1 while the broker link is up."},
			func() float64 { return b2f(a.mqtt.Connected()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "fieldkit_bus_dropped_events_total", Help: "Events lost to slow bus subscribers."},
			func() float64 { return float64(a.bus.Dropped()) }),
		// Uptime is process_start_time_seconds, from the process collector.
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "fieldkit_build_info", Help: "Build version.",
			ConstLabels: prometheus.Labels{"version": statusVersion(), "box": a.cfg.Box}}, func() float64 { return 1 }),
		partStateCollector{a.health},
	)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// partStateCollector exports fieldkit_part_up{part,state}.
type partStateCollector struct{ h *health.Registry }

var partUpDesc = prometheus.NewDesc("fieldkit_part_up", "1 when the part is ok, 0.5 degraded, 0 failed or stopped.", []string{"part", "state"}, nil)

func (c partStateCollector) Describe(ch chan<- *prometheus.Desc) { ch <- partUpDesc }

func (c partStateCollector) Collect(ch chan<- prometheus.Metric) {
	for _, p := range c.h.Snapshot() {
		v := 0.0
		switch p.State {
		case health.OK:
			v = 1
		case health.Degraded:
			v = 0.5
		}
		ch <- prometheus.MustNewConstMetric(partUpDesc, prometheus.GaugeValue, v, p.Name, string(p.State))
	}
}
