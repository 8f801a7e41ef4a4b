package battery

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"fieldkit/battery/source/ina"
	"fieldkit/battery/source/mqttsrc"
	"fieldkit/battery/source/sim"
	"fieldkit/internal/bus"
	"fieldkit/internal/clock"
	"fieldkit/internal/doctor"
	"fieldkit/internal/httpapi"
	"fieldkit/internal/mqttc"
	"fieldkit/internal/testutil"
)

// memMQTT records what the watch would send to the broker and lets the
// test deliver messages to its handlers.
type memMQTT struct {
	mu       sync.Mutex
	handlers map[string]mqttc.Handler
	retained map[string][]byte
	sets     map[string]int
}

func newMemMQTT() *memMQTT {
	return &memMQTT{handlers: map[string]mqttc.Handler{}, retained: map[string][]byte{}, sets: map[string]int{}}
}

func (m *memMQTT) Handle(f string, h mqttc.Handler) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.handlers[f] = h
	return nil
}

func (m *memMQTT) SetRetained(t string, b []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.retained[t] = append([]byte(nil), b...)
	m.sets[t]++
}

func (m *memMQTT) Prefix() string { return "fieldkit/box1" }

func (m *memMQTT) deliver(t *testing.T, topic, payload string) error {
	t.Helper()
	m.mu.Lock()
	h := m.handlers[topic]
	m.mu.Unlock()
	if h == nil {
		t.Fatalf("no handler for %s", topic)
	}
	return h(context.Background(), mqttc.Message{Topic: topic, Payload: []byte(payload)})
}

func (m *memMQTT) state(t *testing.T, rig string) State {
	t.Helper()
	m.mu.Lock()
	b, ok := m.retained[StateTopic("fieldkit/box1", rig)]
	m.mu.Unlock()
	var st State
	if ok {
		if err := json.Unmarshal(b, &st); err != nil {
			t.Fatalf("state %s: %v", b, err)
		}
	}
	return st
}

type harness struct {
	t     *testing.T
	w     *Watch
	clk   *clock.Fake
	mq    *memMQTT
	b     *bus.Bus
	reg   *prometheus.Registry
	stop  func()
	alert *bus.Subscription
}

func start(t *testing.T, cfg Config) *harness {
	t.Helper()
	h := &harness{t: t, clk: clock.NewFake(tStart), mq: newMemMQTT(), b: bus.New(nil), reg: prometheus.NewRegistry()}
	h.alert = h.b.Subscribe("battery/+/alert", 64)
	w, err := New(cfg, Deps{Box: "box1", MQTT: h.mq, Bus: h.b, Clock: h.clk, Metrics: h.reg})
	if err != nil {
		t.Fatal(err)
	}
	h.w = w
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	h.stop = func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after cancel")
		}
	}
	t.Cleanup(h.stop)
	return h
}

// tick advances the fake clock by d once the rig loops wait on it.
func (h *harness) tick(timers int, d time.Duration) {
	h.t.Helper()
	if !h.clk.WaitForTimers(timers, 5*time.Second) {
		h.t.Fatalf("the watch never armed %d timers", timers)
	}
	h.clk.Advance(d)
}

func (h *harness) nextAlert(within time.Duration) Alert {
	h.t.Helper()
	select {
	case ev := <-h.alert.C():
		var a Alert
		if err := json.Unmarshal(ev.Payload, &a); err != nil {
			h.t.Fatalf("alert %s: %v", ev.Payload, err)
		}
		if ev.Topic != AlertTopic(a.Rig) {
			h.t.Fatalf("alert for %s on %s", a.Rig, ev.Topic)
		}
		return a
	case <-time.After(within):
		h.t.Fatal("no alert")
	}
	return Alert{}
}

func (h *harness) noAlert() {
	h.t.Helper()
	select {
	case ev := <-h.alert.C():
		h.t.Fatalf("unexpected alert %s", ev.Payload)
	default:
	}
}

var tStart = time.Date(2025, 6, 1, 18, 0, 0, 0, time.UTC)

func TestSimCrossesWarn(t *testing.T) {
	off := time.Duration(0)
	h := start(t, Config{{Name: "enc1", Source: KindSim, Settings: &sim.Config{StartPercent: 27, Drain: 20 * time.Minute}, Poll: time.Second,
		Thresholds: Thresholds{WarnTTE: &off, CriticalTTE: &off, SwapTTE: &off}}})

	// The discovery config is there before any reading.
	testutil.WaitFor(t, 5*time.Second, "discovery", func() bool {
		h.mq.mu.Lock()
		defer h.mq.mu.Unlock()
		return len(h.mq.retained["homeassistant/sensor/fieldkit_box1/enc1_charge/config"]) > 0
	})
	testutil.WaitFor(t, 5*time.Second, "first state", func() bool { return h.mq.state(t, "enc1").Updated != nil })
	st := h.mq.state(t, "enc1")
	if st.Level != "ok" || !st.Calculating || st.Source != "sim" || st.Percent == nil || *st.Percent < 26 || *st.Percent > 28 {
		t.Fatalf("first state %+v", st)
	}
	// 1 % every 12 s: 27 % → under 25 % after ~25 s, confirmed 2 polls later.
	var a Alert
	for i := 0; i < 60; i++ {
		h.tick(2, time.Second)
		select {
		case ev := <-h.alert.C():
			json.Unmarshal(ev.Payload, &a)
		default:
		}
		if a.Level != "" {
			break
		}
	}
	if a.Level != "warn" || a.Prev != "ok" || a.Rig != "enc1" || a.Percent == nil || *a.Percent >= 25 || *a.Percent < 22 {
		t.Fatalf("alert %+v", a)
	}
	testutil.WaitFor(t, 5*time.Second, "retained warn", func() bool { return h.mq.state(t, "enc1").Level == "warn" })
	if got := gauge(t, h.reg, "fieldkit_battery_alert_level", "enc1"); got != 2 {
		t.Fatalf("alert level gauge %v", got)
	}

	// The pre-show gate fails now.
	res := doctor.Run(context.Background(), h.w.Checks(), time.Second)
	if len(res) != 1 || res[0].Status != doctor.Fail || !strings.Contains(res[0].Detail, "enc1: warn") || res[0].Fix == "" {
		t.Fatalf("doctor %+v", res)
	}

	// The API shows the same.
	rt := httpapi.NewRouter(nil, nil)
	h.w.Routes(rt)
	rec := httptest.NewRecorder()
	rt.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/api/batteries", nil))
	var body struct{ Batteries []State }
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &body) != nil || len(body.Batteries) != 1 || body.Batteries[0].Level != "warn" {
		t.Fatalf("GET /api/batteries: %d %s", rec.Code, rec.Body)
	}
	rec = httptest.NewRecorder()
	rt.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/api/batteries/nope", nil))
	if rec.Code != http.StatusNotFound {
		t.Fatalf("unknown rig: %d", rec.Code)
	}
}

func TestMQTTRigStaleAndBack(t *testing.T) {
	h := start(t, Config{{Name: "wear1", Source: KindMQTT, Settings: &mqttsrc.Config{Topic: "wearables/w1/telemetry", Field: "bat.pct", Unit: mqttsrc.UnitPercent}, StaleAfter: time.Minute}})
	testutil.WaitFor(t, 5*time.Second, "subscription", func() bool {
		h.mq.mu.Lock()
		defer h.mq.mu.Unlock()
		return h.mq.handlers["wearables/w1/telemetry"] != nil
	})
	if err := h.mq.deliver(t, "wearables/w1/telemetry", `{"bat":{"pct":"n/a"}}`); err == nil {
		t.Fatal("a bad payload was accepted (it must be answered on .../error)")
	}
	if err := h.mq.deliver(t, "wearables/w1/telemetry", `{"bat":{"pct":18}}`); err != nil {
		t.Fatal(err)
	}
	a := h.nextAlert(5 * time.Second) // a pack already low when first seen is news
	if a.Level != "warn" || a.Prev != "unknown" || *a.Percent != 18 {
		t.Fatalf("alert %+v", a)
	}
	// Silence for a minute: stale.
	h.tick(1, time.Minute)
	a = h.nextAlert(5 * time.Second)
	if a.Level != "stale" || a.Prev != "warn" {
		t.Fatalf("alert %+v", a)
	}
	testutil.WaitFor(t, 5*time.Second, "retained stale", func() bool { st := h.mq.state(t, "wear1"); return st.Stale && st.Level == "stale" })
	res := doctor.Run(context.Background(), h.w.Checks(), time.Second)
	if res[0].Status != doctor.Fail || !strings.Contains(res[0].Detail, "no reading for 1m0s") {
		t.Fatalf("doctor %+v", res)
	}
	// A fresh pack reports: judged at once, not after confirmation.
	if err := h.mq.deliver(t, "wearables/w1/telemetry", `{"bat":{"pct":97}}`); err != nil {
		t.Fatal(err)
	}
	a = h.nextAlert(5 * time.Second)
	if a.Level != "ok" || a.Prev != "stale" {
		t.Fatalf("alert %+v", a)
	}
	res = doctor.Run(context.Background(), h.w.Checks(), time.Second)
	if res[0].Status != doctor.OK || !strings.Contains(res[0].Detail, "wear1 97 %") {
		t.Fatalf("doctor %+v", res)
	}
	h.noAlert()
}

// Noise on the telemetry around the warn line never makes the alert flap.
func TestNoFlappingThroughTheWatch(t *testing.T) {
	h := start(t, Config{{Name: "wear1", Source: KindMQTT, Settings: &mqttsrc.Config{Topic: "w", Unit: mqttsrc.UnitPercent}}})
	testutil.WaitFor(t, 5*time.Second, "subscription", func() bool { h.mq.mu.Lock(); defer h.mq.mu.Unlock(); return h.mq.handlers["w"] != nil })
	for _, p := range []string{"30", "24", "26", "24", "27", "25", "24", "24", "24", "26", "27", "26", "24", "26", "27"} {
		if err := h.mq.deliver(t, "w", p); err != nil {
			t.Fatal(err)
		}
	}
	a := h.nextAlert(5 * time.Second)
	if a.Level != "warn" {
		t.Fatalf("alert %+v", a)
	}
	testutil.WaitFor(t, 5*time.Second, "all samples", func() bool { st := h.w.States()[0]; return st.Percent != nil && *st.Percent == 27 })
	h.noAlert()
}

func TestDiscoveryPayload(t *testing.T) {
	ds := discovery("box-1", "fieldkit/box-1", "1.2.3", Rig{Name: "enc-1", Source: KindINA226, Settings: &ina.Config{}, Preset: "vmount-26v"})
	if len(ds) != 4 {
		t.Fatalf("%d entities, want charge, time to empty, voltage, power", len(ds))
	}
	checkDiscovery(t, ds)
	var charge, tte map[string]any
	json.Unmarshal(ds["homeassistant/sensor/fieldkit_box_1/enc_1_charge/config"], &charge)
	json.Unmarshal(ds["homeassistant/sensor/fieldkit_box_1/enc_1_tte/config"], &tte)
	for k, want := range map[string]any{
		"state_topic": "fieldkit/box-1/battery/enc-1/state", "value_template": "{{ value_json.percent }}",
		"unit_of_measurement": "%", "device_class": "battery", "unique_id": "fieldkit_box_1_enc_1_charge",
		"default_entity_id": "sensor.fieldkit_box_1_enc_1_charge", "availability_mode": "all",
	} {
		if charge[k] != want {
			t.Errorf("charge %s = %v, want %v", k, charge[k], want)
		}
	}
	for k, want := range map[string]any{"value_template": "{{ value_json.tte_s }}", "unit_of_measurement": "s", "device_class": "duration"} {
		if tte[k] != want {
			t.Errorf("tte %s = %v, want %v", k, tte[k], want)
		}
	}
	dev, _ := charge["device"].(map[string]any)
	if ids, _ := dev["identifiers"].([]any); len(ids) != 1 || ids[0] != "fieldkit_box_1_enc_1" || dev["model"] != "ina226 vmount-26v" || dev["sw_version"] != "1.2.3" {
		t.Errorf("device %v", dev)
	}
	if o, _ := charge["origin"].(map[string]any); o["name"] != "fieldkit" || o["sw_version"] != "1.2.3" {
		t.Errorf("origin %v", charge["origin"])
	}
	// Availability: the agent's status and the rig's own staleness.
	av, _ := charge["availability"].([]any)
	if len(av) != 2 {
		t.Fatalf("availability %v", charge["availability"])
	}
	a0, _ := av[0].(map[string]any)
	a1, _ := av[1].(map[string]any)
	if a0["topic"] != "fieldkit/box-1/status" || a1["topic"] != "fieldkit/box-1/battery/enc-1/state" ||
		!strings.Contains(a1["value_template"].(string), "value_json.stale") {
		t.Errorf("availability %v", av)
	}
	if charge["expire_after"] != float64(60) {
		t.Errorf("expire_after %v, want 60 (twice the 15 s stale time, at least a minute)", charge["expire_after"])
	}

	// An MQTT rig that reports only a percentage has no voltage or power.
	ds = discovery("box1", "fieldkit/box1", "", Rig{Name: "wear", Source: KindMQTT, Settings: &mqttsrc.Config{Topic: "w/t", Unit: mqttsrc.UnitPercent}, StaleAfter: 2 * time.Minute})
	checkDiscovery(t, ds)
	if len(ds) != 2 {
		t.Fatalf("percent-only MQTT rig: %d entities, want 2", len(ds))
	}
	json.Unmarshal(ds["homeassistant/sensor/fieldkit_box1/wear_charge/config"], &charge)
	if charge["expire_after"] != float64(240) {
		t.Errorf("expire_after %v, want 240", charge["expire_after"])
	}
	if _, ok := charge["origin"].(map[string]any)["sw_version"]; ok {
		t.Errorf("empty sw_version sent: %v", charge["origin"])
	}

	no := false
	h := start(t, Config{{Name: "quiet", Source: KindSim, Settings: &sim.Config{}, HomeAssistant: &no}})
	testutil.WaitFor(t, 5*time.Second, "first state", func() bool { return h.mq.state(t, "quiet").Updated != nil })
	h.mq.mu.Lock()
	defer h.mq.mu.Unlock()
	for topic := range h.mq.retained {
		if strings.HasPrefix(topic, "homeassistant/") {
			t.Fatalf("discovery published for a rig that opted out: %s", topic)
		}
	}
}

// firmware-agent doctor runs the check without Run: it reads once.
func TestCheckWithoutRun(t *testing.T) {
	w, err := New(Config{{Name: "low", Source: KindSim, Settings: &sim.Config{StartPercent: 8}}, {Name: "full", Source: KindSim, Settings: &sim.Config{StartPercent: 95}}},
		Deps{Clock: clock.NewFake(tStart)})
	if err != nil {
		t.Fatal(err)
	}
	res := doctor.Run(context.Background(), w.Checks(), time.Second)
	if res[0].Status != doctor.Fail || !strings.Contains(res[0].Detail, "low: critical") || strings.Contains(res[0].Detail, "full:") {
		t.Fatalf("%+v", res)
	}
}

func gauge(t *testing.T, reg *prometheus.Registry, name, rig string) float64 {
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
				if l.GetName() == "rig" && l.GetValue() == rig {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s{rig=%q}", name, rig)
	return 0
}

// The demo's pack lasts what its config says (40 % for 20 minutes), its
// level only ever gets worse while it drains, and a flat pack (0 V from
// the sim) stays at swap instead of going back to critical.
func TestDemoPackDrainsAsConfiguredAndNeverRecovers(t *testing.T) {
	h := start(t, DemoConfig())
	rank := map[string]int{"ok": 0, "warn": 1, "critical": 2, "swap": 3}
	worst, lastLevel := 0, ""
	var at10 float64
	for step := 1; step <= 25*30; step++ { // 25 minutes of 2 s polls
		h.tick(2, 2*time.Second)
		for drained := false; !drained; {
			select {
			case ev := <-h.alert.C():
				var a Alert
				json.Unmarshal(ev.Payload, &a)
				r, ok := rank[a.Level]
				if !ok {
					t.Fatalf("at %v: level %q", time.Duration(step)*2*time.Second, a.Level)
				}
				if r < worst {
					t.Fatalf("at %v the level went back from %s to %s while the pack drained",
						time.Duration(step)*2*time.Second, lastLevel, a.Level)
				}
				worst, lastLevel = r, a.Level
			default:
				drained = true
			}
		}
		if step == 10*30 {
			testutil.WaitFor(t, 5*time.Second, "the state at 10 minutes", func() bool {
				st := h.mq.state(t, "demo-pack")
				return st.Updated != nil && st.Updated.Equal(h.clk.Now().UTC())
			})
			at10 = *h.mq.state(t, "demo-pack").Percent
		}
	}
	t.Logf("10 minutes: %.1f %%; last level %s", at10, lastLevel)
	// Half the 20 minutes: half the 40 %.
	if at10 < 17 || at10 > 23 {
		t.Errorf("after 10 of the demo's 20 minutes the pack shows %.1f %%, want about 20", at10)
	}
	if lastLevel != "swap" {
		t.Errorf("5 minutes after the demo pack ran flat its level is %q, want swap", lastLevel)
	}
}
