package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"periph.io/x/conn/v3/gpio/gpiotest"

	"fieldkit/drivers/cue"
	"fieldkit/drivers/gpioout"
	"fieldkit/drivers/mqttdev"
	"fieldkit/internal/devsim"
	"fieldkit/scenes"
)

func init() { register("landing", benchLanding) }

// landingDevice is one simulated MQTT device of the bench.
type landingDevice struct {
	kind    mqttdev.Kind
	latency time.Duration
}

var landingDevices = []landingDevice{
	{mqttdev.WLED, 5 * time.Millisecond},
	{mqttdev.Tasmota, 40 * time.Millisecond},
	{mqttdev.Z2M, 150 * time.Millisecond},
}

// benchLanding measures how closely one scene step lands on a GPIO lamp
// (a simulated pin, read back) and three simulated MQTT devices that
// confirm after 5, 40 and 150 ms, on Debian's stock Mosquitto: the spread
// of the four confirmation times per step, with lead: auto (after a
// learning run) and without leads. Two sets of the same outputs on their
// own topics take turns, a step of each at a time, so that both see the
// same load.
func benchLanding(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("landing", flag.ContinueOnError)
	n := fs.Int("n", 100, "steps measured with leads, and as many without")
	learn := fs.Int("learn", 20, "steps of the learning run before measuring")
	fs.BoolVar(&verboseLanding, "v", false, "print on stderr the outputs of each step that spread over 8 ms")
	brokerKind := fs.String("broker", "stock", "stock (Mosquitto, Debian's stock settings), nodelay (Mosquitto with set_tcp_nodelay) or embedded (the agent's own broker)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	addr, stop, err := startBenchBroker(ctx, *brokerKind)
	if err != nil {
		return err
	}
	defer stop()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	conn, connDone := benchConn(ctx, addr, "fieldkit/bench")
	defer func() { cancel(); <-connDone }()

	targets := map[string]cue.Target{}
	var devs []*mqttdev.Device
	files := map[string]string{}
	for _, set := range []string{"lead", "nolead"} {
		pin := &gpiotest.Pin{N: "GPIO17-" + set}
		lamp, err := gpioout.New(pin, &gpioout.Opts{Name: set + "-lamp", Log: quietBenchLog()})
		if err != nil {
			return err
		}
		targets[lamp.Name()] = lamp
		names := []string{lamp.Name()}
		for _, ld := range landingDevices {
			name := fmt.Sprintf("%s-%s", set, ld.kind)
			sim, err := devsim.Start("tcp://"+addr, "sim-"+name, devsim.Device{Kind: string(ld.kind), Topic: "bench/" + name}, ld.latency)
			if err != nil {
				return err
			}
			defer sim.Close()
			o := &mqttdev.Opts{Name: name, Kind: ld.kind, Topic: "bench/" + name, Log: quietBenchLog()}
			if set == "lead" {
				o.Lead = cue.Lead{Auto: true}
			}
			d, err := mqttdev.NewDevice(conn, o)
			if err != nil {
				return err
			}
			defer d.Close()
			targets[name], devs = d, append(devs, d)
			names = append(names, name)
		}
		// Steps 400 ms apart: on, then off, so that every step changes
		// every output.
		files[set+".yaml"] = fmt.Sprintf("name: %s\npolicy: queue\nsteps:\n  - {at: 300ms, targets: %v, do: \"on\"}\n"+
			"  - {at: 700ms, targets: %v, do: \"off\"}\n", set, list(names), list(names))
	}
	e, engDone, err := benchEngine(ctx, conn, targets, files)
	if err != nil {
		return err
	}
	defer func() { cancel(); <-engDone }()
	for _, d := range devs {
		if err := waitOnline(ctx, d); err != nil {
			return err
		}
	}

	var withLead, without []time.Duration
	failed := 0
	for i := 0; i < (*learn+1)/2; i++ { // two steps a run
		if _, _, err := landingRun(ctx, e, "lead"); err != nil {
			return fmt.Errorf("learning run: %w", err)
		}
	}
	for len(withLead) < *n {
		for _, set := range []string{"lead", "nolead"} {
			spreads, nf, err := landingRun(ctx, e, set)
			if err != nil {
				return err
			}
			failed += nf
			if set == "lead" {
				withLead = append(withLead, spreads...)
			} else {
				without = append(without, spreads...)
			}
		}
	}
	withLead, without = withLead[:*n], without[:*n]
	for _, d := range devs {
		if d.Lead() > 0 {
			emit("landing", "lead_us_"+d.Name(), float64(d.Lead())/float64(time.Microsecond), "us")
		}
	}
	emit("landing", "steps", float64(len(withLead)), "steps")
	emit("landing", "spread_p50_us", quantileUS(withLead, 0.5), "us")
	emit("landing", "spread_p99_us", quantileUS(withLead, 0.99), "us")
	emit("landing", "spread_max_us", quantileUS(withLead, 1), "us")
	emit("landing", "spread_p50_us_no_lead", quantileUS(without, 0.5), "us")
	emit("landing", "spread_p99_us_no_lead", quantileUS(without, 0.99), "us")
	emit("landing", "unconfirmed_steps", float64(failed), "steps")
	emit("landing", "load1", loadAvg(), "load")
	return nil
}

// verboseLanding prints the outputs of every step that spread over 8 ms.
var verboseLanding bool

func ptrF(p *float64) float64 {
	if p == nil {
		return 0
	}
	return *p
}

func list(names []string) string {
	s := "["
	for i, n := range names {
		if i > 0 {
			s += ", "
		}
		s += n
	}
	return s + "]"
}

func waitOnline(ctx context.Context, d *mqttdev.Device) error {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		if f := d.State().(mqttdev.State).Feedback; f != nil && f.Link == "online" {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s never came online", d.Name())
}

// landingRun runs the scene once and returns, per step whose outputs all
// confirmed, the spread of their confirmation times; steps with an
// output that did not confirm are counted apart.
func landingRun(ctx context.Context, e *scenes.Engine, name string) ([]time.Duration, int, error) {
	before, _ := e.Get(name)
	prev := uint64(0)
	if before.LastRun != nil {
		prev = before.LastRun.Run
	}
	if _, err := e.Fire(name, "bench", nil); err != nil {
		return nil, 0, err
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		d, _ := e.Get(name)
		if rec := d.LastRun; rec != nil && rec.Run != prev && rec.Ended != nil && settled(rec) {
			var out []time.Duration
			nf := 0
			for _, sr := range rec.Steps {
				first, last, ok := time.Time{}, time.Time{}, true
				for _, o := range sr.Outputs {
					if o.Confirmed == nil {
						ok = false
						break
					}
					if first.IsZero() || o.Confirmed.Before(first) {
						first = *o.Confirmed
					}
					if o.Confirmed.After(last) {
						last = *o.Confirmed
					}
				}
				if ok && last.Sub(first) > 8*time.Millisecond && verboseLanding {
					for _, o := range sr.Outputs {
						fmt.Fprintf(os.Stderr, "%s step %d %s: lead %v sent %v landed %v\n", name, sr.Step, o.Output, ptrF(o.LeadUS), o.Sent.Sub(*o.Planned), o.Confirmed.Sub(*o.Planned))
					}
				}
				if ok {
					out = append(out, last.Sub(first))
				} else {
					nf++
				}
			}
			return out, nf, nil
		}
		if time.Now().After(deadline) {
			return nil, 0, fmt.Errorf("scene %s: outputs not settled within 10s", name)
		}
		select {
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// settled reports whether every output of rec confirmed or failed.
func settled(rec *scenes.RunRecord) bool {
	for _, sr := range rec.Steps {
		for _, o := range sr.Outputs {
			if o.Status != cue.Confirmed && o.Status != cue.Failed && o.Status != cue.Superseded {
				return false
			}
		}
	}
	return true
}
