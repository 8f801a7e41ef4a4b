package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"runtime"
	"slices"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"fieldkit/battery"
	"fieldkit/battery/source/mqttsrc"
	"fieldkit/drivers/power"
	"fieldkit/internal/broker"
	"fieldkit/internal/bus"
	"fieldkit/internal/mqttc"
)

func init() {
	register("battery-estimator", benchBatteryEstimator)
	register("battery-alert-latency", benchBatteryAlertLatency)
}

// benchBatteryEstimator measures the cost of one INA-style sample through
// the estimator and the alarm (a Pi Zero 2 W polls a handful of rigs every
// 2 s, so this bounds the CPU the watch takes), and the TTE error against
// the model pack over a full noisy discharge.
func benchBatteryEstimator(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("battery-estimator", flag.ContinueOnError)
	watts := fs.Float64("watts", 45, "constant load")
	if err := fs.Parse(args); err != nil {
		return err
	}
	pack := power.Presets["vmount-26v"]
	e, err := power.NewEstimator(power.Options{Pack: pack})
	if err != nil {
		return err
	}
	a := power.NewAlarm(power.DefaultThresholds)
	m := power.NewModel(pack, 100)
	rng := rand.New(rand.NewPCG(1, 1))
	now := time.Unix(0, 0)
	const every = 2 * time.Second
	var samples []power.Sample
	var truth []time.Duration
	for m.TTE(*watts) > 5*time.Minute {
		m.Draw(*watts, every)
		now = now.Add(every)
		v, i := m.Terminal(*watts)
		s := power.NewSample(now)
		s.Volts, s.Amps = v+rng.NormFloat64()*0.08, i*(1+rng.NormFloat64()*0.05)
		samples = append(samples, s)
		truth = append(truth, m.TTE(*watts))
	}
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	start := time.Now()
	worst := 0.0
	changes := 0
	for k, s := range samples {
		est := e.Update(s)
		if _, ch := a.Update(est); ch {
			changes++
		}
		if est.TTEKnown && !est.Calculating {
			d := float64(est.TTE-truth[k]) / float64(truth[k])
			worst = max(worst, d, -d)
		}
	}
	el := time.Since(start)
	runtime.ReadMemStats(&ms1)
	n := float64(len(samples))
	emit("battery-estimator", "samples", n, "count")
	emit("battery-estimator", "ns_per_sample", float64(el.Nanoseconds())/n, "ns")
	emit("battery-estimator", "allocs_per_sample", float64(ms1.Mallocs-ms0.Mallocs)/n, "allocs")
	emit("battery-estimator", "worst_tte_error_after_settle", 100*worst, "%")
	emit("battery-estimator", "level_changes", float64(changes), "count")
	return ctx.Err()
}

// benchBatteryAlertLatency measures an MQTT telemetry message that
// confirms a low charge, through the embedded broker and the agent's MQTT
// connection, until the alert event is on the bus.
func benchBatteryAlertLatency(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("battery-alert-latency", flag.ContinueOnError)
	n := fs.Int("n", 200, "alerts to raise (each also cleared)")
	gap := fs.Duration("gap", 5*time.Millisecond, "pause before each reading")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The embedded broker, as in the demo: no dependency on a mosquitto
	// install, and the same path a wearable on the venue Wi-Fi takes.
	brk, err := broker.New(broker.Options{Listen: "127.0.0.1:0", Log: quietBenchLog()})
	if err != nil {
		return err
	}
	brkDone := make(chan struct{})
	go func() { defer close(brkDone); _ = brk.Run(ctx) }()
	defer func() { cancel(); <-brkDone }()
	for deadline := time.Now().Add(5 * time.Second); ; {
		if c, err := net.Dial("tcp", brk.Addr()); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("embedded broker not listening on %s", brk.Addr())
		}
		time.Sleep(20 * time.Millisecond)
	}
	addr := brk.Addr()
	conn := mqttc.New(mqttc.Options{URL: "tcp://" + addr, ClientID: "bench-agent", Prefix: "fieldkit/bench", Log: quietBenchLog()})
	connDone := make(chan struct{})
	go func() { defer close(connDone); _ = conn.Run(ctx) }()
	defer func() { cancel(); <-connDone }()
	b := bus.New(quietBenchLog())
	alerts := b.Subscribe("battery/+/alert", 16)
	w, err := battery.New(battery.Config{{Name: "wear1", Source: battery.KindMQTT, Settings: &mqttsrc.Config{Topic: "bench/wear1", Unit: mqttsrc.UnitPercent}}},
		battery.Deps{Box: "bench", MQTT: conn, Bus: b, Log: quietBenchLog()})
	if err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(ctx) }()
	defer func() { cancel(); <-done }()

	cl := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("bench-wearable"))
	if t := cl.Connect(); !t.WaitTimeout(10*time.Second) || t.Error() != nil {
		return fmt.Errorf("bench client: %v", t.Error())
	}
	defer cl.Disconnect(100)
	// The agent's connection runs handlers concurrently (order does not
	// matter to it), so readings sent back to back may be handled out of
	// order; a device reports every few seconds, so pace them a little.
	pub := func(p string) time.Time {
		time.Sleep(*gap)
		sent := time.Now()
		t := cl.Publish("bench/wear1", 1, false, p)
		t.WaitTimeout(5 * time.Second)
		return sent
	}
	// Wait until the watch is subscribed: the first reading makes a state.
	for deadline := time.Now().Add(10 * time.Second); w.States()[0].Updated == nil; {
		if time.Now().After(deadline) {
			return fmt.Errorf("the watch never received telemetry")
		}
		pub("90")
		time.Sleep(50 * time.Millisecond)
	}
	// await waits for the next alert of level, up to a second.
	await := func(level string) bool {
		timeout := time.After(time.Second)
		for {
			select {
			case ev := <-alerts.C():
				var a battery.Alert
				if json.Unmarshal(ev.Payload, &a) == nil && a.Level == level {
					return true
				}
			case <-timeout:
				return false
			}
		}
	}
	var lat []time.Duration
	lost := 0
	for i := 0; i < *n && ctx.Err() == nil; i++ {
		// Three readings confirm a level; the third is the one timed.
		pub("8")
		pub("8")
		sent := pub("8")
		if await("critical") {
			lat = append(lat, time.Since(sent))
		} else {
			lost++
		}
		pub("90")
		pub("90")
		pub("90")
		await("ok")
	}
	if len(lat) == 0 {
		return fmt.Errorf("no alert was raised")
	}
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	emit("battery-alert-latency", "alerts", float64(len(lat)), "count")
	emit("battery-alert-latency", "lost", float64(lost), "count")
	emit("battery-alert-latency", "p50", q(0.5), "ms")
	emit("battery-alert-latency", "p99", q(0.99), "ms")
	emit("battery-alert-latency", "max", q(1), "ms")
	return nil
}
