package mqttdev

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"fieldkit/drivers/cue"
	"fieldkit/internal/clock"
	"fieldkit/internal/deps"
	"fieldkit/internal/event"
	"fieldkit/internal/topic"
)

// Kind is a family of MQTT devices.
type Kind string

// The device kinds.
const (
	WLED    Kind = "wled"
	Tasmota Kind = "tasmota"
	Shelly  Kind = "shelly"
	Z2M     Kind = "z2m"
)

// Sentinel errors.
var (
	ErrBadOpts     = errors.New("mqttdev: invalid options")
	ErrUnsupported = errors.New("action not supported by this device")
)

// Opts configure a light or switch.
type Opts struct {
	Name string
	Kind Kind
	// Topic is the device's topic: the WLED/Tasmota topic, the Shelly's
	// RPC prefix (e.g. shellyplus1-a8032ab12345) or the Zigbee2MQTT
	// friendly name.
	Topic string
	// Channel is the Shelly switch or light id (default 0).
	Channel int
	// Dimmable makes a Shelly a light (Light.Set with brightness)
	// instead of a switch (Switch.Set).
	Dimmable bool
	// Base is the Zigbee2MQTT base topic (default zigbee2mqtt).
	Base string
	// Settle is how long after a reconnect the state is re-asserted.
	// The MQTT client re-sends its own unacknowledged messages as the
	// link comes up, and publishing at that very moment races inside
	// paho (eclipse-paho/paho.mqtt.golang#703).
	Settle time.Duration
	Clock  clock.Clock
	Log    *slog.Logger
	// Metrics counts commands the broker did not take (nil: none).
	Metrics *cue.Metrics
}

// State is a device's desired state.
type State struct {
	On         bool   `json:"on"`
	Brightness int    `json:"brightness"` // percent
	Color      string `json:"color,omitempty"`
	Effect     string `json:"effect,omitempty"`
	Action     string `json:"action,omitempty"`
	Error      string `json:"error,omitempty"`
}

// Message is one publish.
type Message struct {
	Topic   string
	Payload []byte
}

// Device is a light or switch on MQTT. It implements cue.Target.
type Device struct {
	c       Conn
	o       Opts
	clk     clock.Clock
	log     *slog.Logger
	rpc     atomic.Int64 // Shelly request ids
	pending atomic.Int64 // queued batches not yet handed to the broker

	applyMu sync.Mutex
	run     cue.Runner

	mu     sync.Mutex
	st     State
	queue  chan []Message
	kick   chan struct{} // re-assert after a reconnect
	closed bool
	stop   context.CancelFunc
	done   chan struct{}
}

// NewDevice prepares a device; nothing is published until an Apply.
func NewDevice(c Conn, opts *Opts) (*Device, error) {
	if opts == nil {
		return nil, fmt.Errorf("%w: no options", ErrBadOpts)
	}
	o := *opts
	switch o.Kind {
	case WLED, Tasmota, Shelly, Z2M:
	default:
		return nil, fmt.Errorf("%w: unknown kind %q; expected wled, tasmota, shelly or z2m", ErrBadOpts, o.Kind)
	}
	if o.Base == "" {
		o.Base = "zigbee2mqtt"
	}
	if o.Topic == "" || topic.ValidName(o.Topic) != nil || topic.ValidName(o.Base) != nil {
		return nil, fmt.Errorf("%w: %s topic %q: expected topic levels without wildcards", ErrBadOpts, o.Kind, o.Topic)
	}
	if o.Channel < 0 {
		return nil, fmt.Errorf("%w: channel %d", ErrBadOpts, o.Channel)
	}
	if o.Settle == 0 {
		o.Settle = 100 * time.Millisecond
	}
	o.Clock, o.Log = deps.Clock(o.Clock), deps.Log(o.Log)
	if o.Name == "" {
		o.Name = o.Topic
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &Device{c: c, o: o, clk: o.Clock, log: o.Log.With("output", o.Name, "kind", string(o.Kind)),
		st: State{Brightness: 100}, queue: make(chan []Message, 256), kick: make(chan struct{}, 1), stop: cancel, done: make(chan struct{})}
	go d.publisher(ctx)
	c.OnConnect(d.reassert)
	return d, nil
}

func (d *Device) Name() string { return d.o.Name }
func (d *Device) Kind() string { return string(d.o.Kind) }

// Check reports whether the device kind can do a.
func (d *Device) Check(a cue.Action) error {
	if err := a.Validate(); err != nil {
		return err
	}
	colour := d.o.Kind == WLED || d.o.Kind == Z2M
	dim := colour || d.o.Kind == Tasmota || d.o.Dimmable
	switch {
	case a.Do == cue.Color && !colour, a.Color != "" && !colour:
		return fmt.Errorf("has no colour; use on/off%s: %w", map[bool]string{true: " or level", false: ""}[dim], ErrUnsupported)
	case a.Do == cue.Level && !dim:
		return fmt.Errorf("a switch cannot dim; set dimmable: true for a Shelly dimmer: %w", ErrUnsupported)
	case a.Do == cue.Effect && a.Effect == "countdown":
		return fmt.Errorf("the countdown bar needs an LED strip driven by the box (ws2812, apa102): %w", ErrUnsupported)
	case a.Do == cue.Effect && a.Effect != "solid" && d.o.Kind != WLED:
		return fmt.Errorf("has no %s effect; only WLED runs chase and flash: %w", a.Effect, ErrUnsupported)
	}
	return nil
}

// WLED effect ids (the fx field of its JSON API).
var wledFX = map[string]int{"solid": 0, "flash": 1, "chase": 28}

// Apply publishes the first state at once (queued to the device's
// publisher, never waiting on the broker) and times the rest of a pulse,
// blink or haptic pattern on the device's goroutine.
func (d *Device) Apply(_ context.Context, a cue.Action) error {
	if err := d.Check(a); err != nil {
		return err
	}
	d.applyMu.Lock()
	defer d.applyMu.Unlock()
	d.run.Stop()
	start := d.clk.Now()

	d.mu.Lock()
	if a.Color != "" {
		d.st.Color = a.Color
	}
	d.st.Action, d.st.Effect = string(a.Do), ""
	if a.Do == cue.Effect {
		d.st.Effect = a.Effect
	}
	d.mu.Unlock()

	steps := cue.Timeline(a)
	if steps == nil { // color, effect: on at the given (or last) brightness
		d.mu.Lock()
		lvl := a.Percent(d.st.Brightness)
		d.mu.Unlock()
		steps = []cue.Step{{Level: lvl}}
	}
	d.set(steps[0].Level)
	if len(steps) > 1 {
		rest := steps[1:]
		d.run.Go(func(ctx context.Context) {
			cue.Play(ctx, d.clk, start, rest, func(s cue.Step) { d.set(s.Level) })
		})
	}
	return nil
}

func (d *Device) set(level int) {
	d.mu.Lock()
	d.st.On = level > 0
	if level > 0 {
		d.st.Brightness = level
	}
	msgs := d.encodeLocked()
	d.mu.Unlock()
	d.enqueue(msgs)
}

func (d *Device) enqueue(msgs []Message) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	d.pending.Add(1)
	select {
	case d.queue <- msgs:
	default:
		d.pending.Add(-1)
		d.log.Error("MQTT device queue is full (broker too slow?); state change dropped")
		d.st.Error = "publish queue full"
	}
}

// reassert publishes the desired state again after a reconnect: a plug
// that rebooted, or a broker that lost its sessions, is put right.
func (d *Device) reassert() {
	d.pending.Add(1)
	select {
	case d.kick <- struct{}{}:
	default: // one is already due
		d.pending.Add(-1)
	}
}

func (d *Device) publisher(ctx context.Context) {
	defer close(d.done)
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.kick:
			if !cue.SleepUntil(ctx, d.clk, d.clk.Now().Add(d.o.Settle)) {
				return
			}
			d.mu.Lock()
			touched := d.st.Action != ""
			msgs := d.encodeLocked()
			d.mu.Unlock()
			if touched {
				d.publish(ctx, msgs)
			}
			d.pending.Add(-1)
		case msgs := <-d.queue:
			d.publish(ctx, msgs)
			d.pending.Add(-1)
		}
	}
}

func (d *Device) publish(ctx context.Context, msgs []Message) {
	for _, m := range msgs {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := d.c.Publish(pctx, m.Topic, 1, false, m.Payload)
		cancel()
		d.mu.Lock()
		if err != nil {
			d.st.Error = err.Error()
		} else {
			d.st.Error = ""
		}
		d.mu.Unlock()
		if err != nil {
			d.o.Metrics.PublishFailed(d.o.Name, string(d.o.Kind))
		}
		switch {
		case errors.Is(err, event.ErrNotConnected):
			// Expected before the first connect and while the broker is
			// away; the connection's own health says so.
			d.log.Debug("MQTT device command waits for the broker", "topic", m.Topic)
		case err != nil:
			d.log.Warn("MQTT device command not delivered; it is sent again after the next reconnect", "topic", m.Topic, "err", err)
		}
	}
}

// Safe makes off the desired state and sends it: at once when the broker
// is there, else as soon as it is (every reconnect re-sends the desired
// state).
func (d *Device) Safe(ctx context.Context) error { return d.Apply(ctx, cue.Action{Do: cue.Off}) }

var _ cue.Safer = (*Device)(nil)

// State returns the desired state.
func (d *Device) State() any {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.st
}

// Close stops the device's goroutines. It leaves the device as it is: a
// house light must not go dark because the agent restarts.
func (d *Device) Close() error {
	d.applyMu.Lock()
	defer d.applyMu.Unlock()
	d.run.Stop()
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	d.stop()
	<-d.done
	return nil
}

// Flush waits until every queued state change has been handed to the
// broker, or ctx ends.
func (d *Device) Flush(ctx context.Context) error {
	for {
		if d.pending.Load() == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
}

func (d *Device) encodeLocked() []Message {
	return Encode(d.o, d.st, d.rpc.Add(1), d.c.Prefix())
}

// Encode returns the messages that put a device of o's kind in state s.
// seq is the Shelly RPC request id; prefix is the box's topic prefix,
// where Shelly answers go.
func Encode(o Opts, s State, seq int64, prefix string) []Message {
	r, g, b, colErr := cue.ParseColor(s.Color)
	hasColor := colErr == nil
	switch o.Kind {
	case WLED:
		seg := map[string]any{"fx": wledFX[s.Effect]}
		if hasColor {
			seg["col"] = [][3]uint8{{r, g, b}}
		}
		return []Message{{o.Topic + "/api", mustJSON(struct {
			On  bool             `json:"on"`
			Bri int              `json:"bri"`
			Seg []map[string]any `json:"seg"`
		}{s.On, scale(s.Brightness, 255), []map[string]any{seg}})}}
	case Tasmota:
		t := "cmnd/" + o.Topic + "/"
		if !s.On {
			return []Message{{t + "POWER", []byte("OFF")}}
		}
		var m []Message
		if hasColor {
			m = append(m, Message{t + "Color", fmt.Appendf(nil, "%d,%d,%d", r, g, b)})
		}
		m = append(m, Message{t + "Dimmer", []byte(strconv.Itoa(s.Brightness))}, Message{t + "POWER", []byte("ON")})
		return m
	case Shelly:
		params := map[string]any{"id": o.Channel, "on": s.On}
		method := "Switch.Set"
		if o.Dimmable {
			method = "Light.Set"
			if s.On {
				params["brightness"] = s.Brightness
			}
		}
		return []Message{{o.Topic + "/rpc", mustJSON(struct {
			ID     int64          `json:"id"`
			Src    string         `json:"src"`
			Method string         `json:"method"`
			Params map[string]any `json:"params"`
		}{seq, prefix + "/shelly/" + o.Name, method, params})}}
	case Z2M:
		type col struct {
			Hex string `json:"hex"`
		}
		v := struct {
			State      string `json:"state"`
			Brightness *int   `json:"brightness,omitempty"`
			Color      *col   `json:"color,omitempty"`
		}{State: "OFF"}
		if s.On {
			v.State = "ON"
			bri := scale(s.Brightness, 254)
			v.Brightness = &bri
			if hasColor {
				v.Color = &col{fmt.Sprintf("#%02x%02x%02x", r, g, b)}
			}
		}
		return []Message{{o.Base + "/" + o.Topic + "/set", mustJSON(v)}}
	}
	return nil
}

// scale maps a percentage onto 0..top, rounding.
func scale(pct, top int) int { return (pct*top + 50) / 100 }

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only fixed shapes are marshalled
	}
	return b
}

var _ cue.Target = (*Device)(nil)
