package main

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"periph.io/x/conn/v3/gpio/gpiotest"

	"fieldkit/drivers/cue"
	"fieldkit/drivers/gpioout"
	"fieldkit/internal/mqttc"
	"fieldkit/scenes"
)

func init() { register("scene-jitter", benchSceneJitter) }

// processStart is close enough to the runtime's own start for matching
// late steps with gctrace lines (within a millisecond or two).
var processStart = time.Now()

// benchSceneJitter runs a 60-step scene with 12 GPIO outputs per step on
// the real clock while the process does other agent work (MQTT telemetry
// through Mosquitto, receipt signing, JSON), and reports how late steps
// start and how far apart the 12 outputs of a step start.
func benchSceneJitter(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("scene-jitter", flag.ContinueOnError)
	steps := fs.Int("steps", 60, "steps in the scene")
	width := fs.Int("targets", 12, "outputs per step")
	every := fs.Duration("every", 50*time.Millisecond, "time between steps")
	runs := fs.Int("runs", 5, "runs of the scene")
	load := fs.Bool("load", true, "keep the agent busy with other work meanwhile")
	verbose := fs.Bool("v", false, "print each step more than 2 ms late")
	rate := fs.Int("mqtt-rate", 1000, "telemetry messages per second through the broker (with -load)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	broker, stop, err := startBenchMosquittoConf("set_tcp_nodelay true\n")
	if err != nil {
		return err
	}
	defer stop()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	conn, connDone := benchConn(ctx, broker, "fieldkit/bench")
	defer func() { cancel(); <-connDone }()

	targets := map[string]cue.Target{}
	var names []string
	for i := 1; i <= *width; i++ {
		n := fmt.Sprintf("out%02d", i)
		o, err := gpioout.New(&gpiotest.Pin{N: fmt.Sprintf("GPIO%d", i)}, &gpioout.Opts{Name: n, Log: quietBenchLog()})
		if err != nil {
			return err
		}
		targets[n] = o
		names = append(names, n)
	}
	var src strings.Builder
	src.WriteString("name: jitter\npolicy: queue\nsteps:\n")
	for i := 0; i < *steps; i++ {
		do := "on"
		if i%2 == 1 {
			do = "off"
		}
		fmt.Fprintf(&src, "  - {at: %v, targets: [%s], do: %q}\n", time.Duration(i)**every, strings.Join(names, ", "), do)
	}
	eng, engDone, err := benchEngine(ctx, conn, targets, map[string]string{"jitter.yaml": src.String()})
	if err != nil {
		return err
	}
	defer func() { cancel(); <-engDone }()

	var handled, signed atomic.Uint64
	var wg sync.WaitGroup
	loadCtx, stopLoad := context.WithCancel(ctx)
	if *load {
		if err := startLoad(loadCtx, &wg, conn, broker, *rate, &handled, &signed); err != nil {
			stopLoad()
			return err
		}
	}
	time.Sleep(500 * time.Millisecond) // let the load settle

	var late, spread []time.Duration
	begin := time.Now()
	for r := 0; r < *runs && ctx.Err() == nil; r++ {
		var out scenes.Outcome
		for out == "" {
			if out, err = eng.Fire("jitter", "bench", nil); err != nil && !strings.Contains(err.Error(), "not running") {
				stopLoad()
				return err
			}
			if out == "" {
				time.Sleep(time.Millisecond)
			}
		}
		want := uint64(r + 1)
		for {
			d, _ := eng.Get("jitter")
			if d.LastRun != nil && d.LastRun.Run == want && d.LastRun.Ended != nil {
				for _, s := range d.LastRun.Steps {
					if s.LatenessUS == nil || s.Error != "" {
						stopLoad()
						return fmt.Errorf("run %d step %d: not dispatched: %s", want, s.Step, s.Error)
					}
					late = append(late, time.Duration(*s.LatenessUS*float64(time.Microsecond)))
					if *s.LatenessUS > 2000 && *verbose {
						// @ is seconds since the process began, the clock
						// of GODEBUG=gctrace=1's lines, to match them up.
						fmt.Fprintf(os.Stderr, "run %d step %d planned @%.3fs late %.0f µs\n", want, s.Step, s.Planned.Sub(processStart).Seconds(), *s.LatenessUS)
					}
					spread = append(spread, time.Duration(*s.SpreadUS*float64(time.Microsecond)))
				}
				break
			}
			select {
			case <-ctx.Done():
				stopLoad()
				return ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	elapsed := time.Since(begin)
	stopLoad()
	wg.Wait()

	const b = "scene-jitter"
	emit(b, "steps_measured", float64(len(late)), "count")
	emit(b, "lateness_p50_us", quantileUS(late, 0.50), "us")
	emit(b, "lateness_p99_us", quantileUS(late, 0.99), "us")
	emit(b, "lateness_max_us", quantileUS(late, 1), "us")
	emit(b, "spread_p50_us", quantileUS(spread, 0.50), "us")
	emit(b, "spread_p99_us", quantileUS(spread, 0.99), "us")
	emit(b, "spread_max_us", quantileUS(spread, 1), "us")
	if *load {
		emit(b, "load_mqtt_msgs_per_s", float64(handled.Load())/elapsed.Seconds(), "msg/s")
		emit(b, "load_signatures_per_s", float64(signed.Load())/elapsed.Seconds(), "sig/s")
	}
	return nil
}

// startLoad keeps the process busy like the rest of the agent: battery
// telemetry through the broker, decoded by a handler, and receipt
// signing (SHA-256 chain, Ed25519, JSON) on every core, with pauses as a
// request-driven part has.
func startLoad(ctx context.Context, wg *sync.WaitGroup, conn *mqttc.Conn, broker string, rate int, handled, signed *atomic.Uint64) error {
	if err := conn.Handle("fieldkit/bench/battery/+/state", func(_ context.Context, m mqttc.Message) error {
		var v map[string]any
		if err := json.Unmarshal(m.Payload, &v); err != nil {
			return err
		}
		handled.Add(1)
		return nil
	}); err != nil {
		return err
	}
	pub, err := benchClient(broker, "bench-telemetry")
	if err != nil {
		return err
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer pub.Disconnect(50)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		per := max(1, rate/100)
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			for k := 0; k < per; k++ {
				p := fmt.Sprintf(`{"rig":"rig%d","volts":%.2f,"amps":%.3f,"charge":%d,"seq":%d}`, k%4, 14.8-float64(i%100)/100, 1.2, 80-i%50, i)
				pub.Publish(fmt.Sprintf("fieldkit/bench/battery/rig%d/state", k%4), 0, false, []byte(p))
			}
		}
	}()
	_, key, _ := ed25519.GenerateKey(nil)
	for w := 0; w < runtime.NumCPU(); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			prev := sha256.Sum256(nil)
			for seq := 0; ctx.Err() == nil; seq++ {
				for k := 0; k < 20; k++ {
					rec, _ := json.Marshal(map[string]any{"seq": seq*20 + k, "prev": fmt.Sprintf("%x", prev), "items": []map[string]any{{"sku": "TEE-42", "qty": 2, "unit": 2500}}, "total": 5000})
					sig := ed25519.Sign(key, rec)
					prev = sha256.Sum256(append(rec, sig...))
					signed.Add(1)
				}
				time.Sleep(time.Millisecond)
			}
		}()
	}
	return nil
}
