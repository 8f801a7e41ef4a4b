package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"periph.io/x/conn/v3/gpio/gpiotest"

	"fieldkit/drivers/cue"
	"fieldkit/drivers/gpioout"
	"fieldkit/internal/bus"
	"fieldkit/internal/mqttc"
	"fieldkit/scenes"
	"fieldkit/venue"
)

func init() { register("venue", benchVenue) }

// venueBenchScene is a venue-wide scene with one cue at its start.
const venueBenchScene = "name: open\nscope: venue\npolicy: restart\nsteps:\n  - {at: 0s, target: lamp, do: \"on\"}\n"

// venueBenchBox is one box of the bench: its venue connection and membership
// and its scene engine, as the agent wires them.
type venueBenchBox struct {
	name string
	eng  *scenes.Engine
	v    *venue.Venue
}

type benchFireAt struct{ e *scenes.Engine }

func (b *benchFireAt) FireAt(name, source string, payload []byte, at time.Time) error {
	_, err := b.e.FireAt(name, source, payload, at)
	return err
}

// benchVenue fires a venue-wide scene on one box after another of a venue
// on one Mosquitto and measures how far apart the boxes start it: the
// spread between the first and the last actual start of each fire, for
// 3 boxes and for 10. The boxes run in this one process (each its own
// venue connection, engine and timeline thread), so on a two-core
// machine ten boxes share two cores that ten Pis would not.
func benchVenue(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("venue", flag.ContinueOnError)
	fires := fs.Int("fires", 100, "fires per venue size")
	lead := fs.Duration("lead", venue.DefaultLead, "start lead of a venue fire")
	if err := fs.Parse(args); err != nil {
		return err
	}
	scenes.ReserveProcs()
	broker, stop, err := startBenchMosquitto()
	if err != nil {
		return err
	}
	defer stop()
	for _, n := range []int{3, 10} {
		spreads, late, err := venueRound(ctx, broker, n, *fires, *lead)
		if err != nil {
			return err
		}
		suffix := ""
		if n != 3 {
			suffix = fmt.Sprintf("_%d", n)
		}
		emit("venue", "spread_p50_us"+suffix, quantileUS(spreads, 0.50), "us")
		emit("venue", "spread_p99_us"+suffix, quantileUS(spreads, 0.99), "us")
		emit("venue", "spread_max_us"+suffix, quantileUS(spreads, 1), "us")
		emit("venue", "late_fires"+suffix, float64(late), "count")
	}
	return nil
}

// venueRound runs n boxes and fires times; it returns each fire's spread
// and how many box-runs started late (the fire came after its start).
func venueRound(ctx context.Context, broker string, n, fires int, lead time.Duration) ([]time.Duration, int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	dir, err := os.MkdirTemp("", "venue-bench")
	if err != nil {
		return nil, 0, err
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "open.yaml"), []byte(venueBenchScene), 0o644); err != nil {
		return nil, 0, err
	}
	venueID := fmt.Sprintf("bench-%d", n)
	var boxes []venueBenchBox
	var done []chan struct{}
	defer func() {
		cancel()
		for _, d := range done {
			<-d
		}
	}()
	for i := range n {
		name := fmt.Sprintf("box%02d", i)
		vc := venue.Config{ID: venueID, Reference: i == 0, Lead: lead}.WithDefaults()
		conn := mqttc.New(mqttc.Options{URL: "tcp://" + broker, ClientID: venue.ClientID(venueID, name),
			Prefix: venue.BoxPrefix(vc.Prefix, name), Log: quietBenchLog()})
		fa := &benchFireAt{}
		v, err := venue.New(vc, venue.Deps{Box: name, Conn: conn, Scenes: fa, Log: quietBenchLog()})
		if err != nil {
			return nil, 0, err
		}
		lamp, err := gpioout.New(&gpiotest.Pin{N: "GPIO5"}, &gpioout.Opts{Name: "lamp", Log: quietBenchLog()})
		if err != nil {
			return nil, 0, err
		}
		eng, err := scenes.New(scenes.Config{Dir: dir}, scenes.Deps{Targets: map[string]cue.Target{"lamp": lamp},
			Bus: bus.New(quietBenchLog()), Log: quietBenchLog(), Venue: v})
		if err != nil {
			return nil, 0, err
		}
		fa.e = eng
		for _, run := range []func(context.Context) error{v.Run, eng.Run} {
			d := make(chan struct{})
			done = append(done, d)
			go func() { defer close(d); _ = run(ctx) }()
		}
		boxes = append(boxes, venueBenchBox{name: name, eng: eng, v: v})
	}
	if err := venueWaitFor(ctx, 30*time.Second, func() bool {
		for _, b := range boxes {
			if st := b.v.State(); !st.Connected || st.Reference != "box00" || countOnline(st) != n {
				return false
			}
		}
		return true
	}); err != nil {
		return nil, 0, fmt.Errorf("venue of %d boxes did not form: %w", n, err)
	}

	var spreads []time.Duration
	late := 0
	var prev time.Time
	for i := 0; i < fires && ctx.Err() == nil; i++ {
		if _, err := boxes[i%n].eng.Fire("open", "bench", nil); err != nil {
			return nil, 0, fmt.Errorf("fire %d: %w", i, err)
		}
		var starts []time.Time
		var at time.Time
		if err := venueWaitFor(ctx, 10*time.Second, func() bool {
			starts, at = starts[:0], time.Time{}
			for _, b := range boxes {
				d, _ := b.eng.Get("open")
				r := d.LastRun
				if r == nil || r.StartAt == nil || !r.StartAt.After(prev) || r.Steps[0].Actual == nil ||
					(!at.IsZero() && !r.StartAt.Equal(at)) {
					return false
				}
				at = *r.StartAt
				starts = append(starts, *r.Steps[0].Actual)
			}
			return true
		}); err != nil {
			return nil, 0, fmt.Errorf("fire %d did not land on all %d boxes: %w", i, n, err)
		}
		for _, b := range boxes {
			if d, _ := b.eng.Get("open"); d.LastRun.StartLateUS != nil {
				late++
			}
		}
		prev = at
		spreads = append(spreads, slices.MaxFunc(starts, time.Time.Compare).Sub(slices.MinFunc(starts, time.Time.Compare)))
	}
	return spreads, late, ctx.Err()
}

func countOnline(st venue.State) int {
	n := 0
	for _, m := range st.Members {
		if m.Online && m.Instance != "" {
			n++
		}
	}
	return n
}

// venueWaitFor polls cond every millisecond until it holds, ctx ends or within
// passes.
func venueWaitFor(ctx context.Context, within time.Duration, cond func() bool) error {
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			return errors.New("timed out")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
	return nil
}
