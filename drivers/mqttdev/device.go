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
	// Channel is the Shelly switch or light id (default 0), or the
	// Tasmota relay: 0 drives POWER (the first relay), n drives POWER<n>.
	Channel int
	// Effects are the values the Zigbee2MQTT device exposes for its
	// effect feature (blink, breathe, okay, ...); a cue flash needs blink.
	Effects []string
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
	// Deadline is how long the device has to confirm a command on its
	// state or reply topic before it is sent once more, and then
	// reported failed (default DefaultDeadline; negative: no read-back).
	Deadline time.Duration
	// Bus receives cue/<name>/alert when a command failed.
	Bus Events
	// OnResult, if set, is told how each command ended. It must not
	// block. (A scene step's own command is also reported to the
	// cue.Reporter its Apply context carries.)
	OnResult func(Result)
	// Lead is how long before a scene step's time the device is sent its
	// command: fixed, or (Auto) the median time from Apply to the
	// device's confirmation over its last 64 commands.
	Lead  cue.Lead
	Clock clock.Clock
	Log   *slog.Logger
	// Metrics records confirmations and commands the broker did not
	// take (nil: none).
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
	// Feedback is what the device reported (State() only).
	Feedback *Feedback `json:"feedback,omitempty"`
}

// batch is one command: the messages that put the device in st, and
// the Shelly request id among them.
type batch struct {
	st      State
	seq     int64
	msgs    []Message
	planned time.Time
	rep     cue.Reporter // the scene step's, for its first command only
	// applied is when Apply queued it (zero for a re-assert): a lead is
	// learned from there, since that is the time the engine controls.
	applied time.Time
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

	arm chan struct{} // (re)start the confirmation deadline

	mu   sync.Mutex
	st   State
	fb   Feedback
	wait *pending
	// planned is when the step that set the state was due (zero when
	// not from a scene step).
	planned time.Time
	rep     cue.Reporter // the step's reporter, like planned
	applied time.Time    // when Apply started, like planned
	lat     []time.Duration
	// leadLat are the recent times from Apply to confirmation.
	leadLat []time.Duration
	// lead is the learned lead (the median confirmation latency) in
	// nanoseconds, read on every scene dispatch without the lock.
	lead   atomic.Int64
	queue  chan batch
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
	if o.Deadline == 0 {
		o.Deadline = DefaultDeadline
	}
	o.Clock, o.Log = deps.Clock(o.Clock), deps.Log(o.Log)
	if o.Name == "" {
		o.Name = o.Topic
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &Device{c: c, o: o, clk: o.Clock, log: o.Log.With("output", o.Name, "kind", string(o.Kind)),
		st: State{Brightness: 100}, fb: Feedback{Link: "unknown"}, queue: make(chan batch, 256), kick: make(chan struct{}, 1),
		arm: make(chan struct{}, 1), stop: cancel, done: make(chan struct{})}
	if o.Deadline > 0 {
		for _, f := range feedTopics(o, c.Prefix()) {
			if err := c.Handle(f, d.onReport); err != nil {
				cancel()
				return nil, fmt.Errorf("%s %s: %w", o.Kind, o.Name, err)
			}
		}
	}
	go d.publisher(ctx)
	c.OnConnect(d.reassert)
	return d, nil
}

func (d *Device) Name() string { return d.o.Name }

// Lead is how long ahead of a step's time the device is sent its
// command: the configured lead, or the learned one (zero until the
// device has confirmed a command).
func (d *Device) Lead() time.Duration {
	if d.o.Lead.Auto {
		return time.Duration(d.lead.Load())
	}
	return d.o.Lead.Fixed
}

var _ cue.Leader = (*Device)(nil)

func (d *Device) Kind() string { return string(d.o.Kind) }

// Check reports whether the device kind can do a.
func (d *Device) Check(a cue.Action) error {
	if err := a.Validate(); err != nil {
		return err
	}
	// Tasmota drives RGB bulbs with its Color command; a plain plug
	// ignores it, which the read-back then reports.
	colour := d.o.Kind == WLED || d.o.Kind == Z2M || d.o.Kind == Tasmota
	dim := colour || d.o.Dimmable
	switch {
	case a.Do == cue.Color && !colour, a.Color != "" && !colour:
		return fmt.Errorf("has no colour; use on/off%s: %w", map[bool]string{true: " or level", false: ""}[dim], ErrUnsupported)
	case a.Do == cue.Level && !dim:
		return fmt.Errorf("a switch cannot dim; set dimmable: true for a Shelly dimmer: %w", ErrUnsupported)
	case a.Do == cue.Effect && a.Effect == "countdown":
		return fmt.Errorf("the countdown bar needs an LED strip driven by the box (ws2812, apa102): %w", ErrUnsupported)
	case a.Do == cue.Effect && a.Effect == "solid", a.Do != cue.Effect, d.o.Kind == WLED:
	case d.o.Kind == Z2M && a.Effect == "flash":
		if z2mEffect(d.o.Effects, "flash") == "" {
			return fmt.Errorf("flash needs the bulb's blink effect; list what it exposes under effects: (e.g. effects: [blink, breathe]): %w", ErrUnsupported)
		}
	default:
		return fmt.Errorf("has no %s effect; only WLED runs chase, and flash needs WLED or a Zigbee bulb exposing blink: %w", a.Effect, ErrUnsupported)
	}
	return nil
}

// WLED effect ids (the fx field of its JSON API).
var wledFX = map[string]int{"solid": 0, "flash": 1, "chase": 28}

// Apply publishes the first state at once (queued to the device's
// publisher, never waiting on the broker) and times the rest of a pulse,
// blink or haptic pattern on the device's goroutine.
func (d *Device) Apply(ctx context.Context, a cue.Action) error {
	if err := d.Check(a); err != nil {
		return err
	}
	d.applyMu.Lock()
	defer d.applyMu.Unlock()
	d.run.Stop()
	start := d.clk.Now()
	d.mu.Lock()
	d.planned = cue.Planned(ctx) // the step's time, for the end-to-end latency
	d.rep = cue.ReporterOf(ctx)
	d.applied = start
	d.mu.Unlock()

	d.mu.Lock()
	if a.Color != "" {
		d.st.Color = a.Color
	}
	// The running effect stays unless an effect is asked for: a dim
	// cue must not stop what the lighting designer has running.
	d.st.Action = string(a.Do)
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
	b := d.batchLocked(false)
	d.planned, d.rep, d.applied = time.Time{}, nil, time.Time{} // only the step's first command was due then
	d.mu.Unlock()
	d.enqueue(b)
}

func (d *Device) enqueue(msgs batch) {
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
	// The confirmation deadline; armed after each send.
	var due <-chan time.Time
	var timer interface{ Stop() bool }
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
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
			b := d.batchLocked(true)
			d.mu.Unlock()
			if touched {
				d.sent(b, d.clk.Now())
				d.publish(ctx, b.msgs)
			}
			d.pending.Add(-1)
		case b := <-d.queue:
			// Wait for the answer before publishing: a device may
			// answer before the broker's PUBACK reaches the agent.
			d.sent(b, d.clk.Now())
			d.publish(ctx, b.msgs)
			d.pending.Add(-1)
		case <-d.arm:
			if timer != nil {
				timer.Stop()
			}
			t := d.clk.NewTimer(d.o.Deadline)
			timer, due = t, t.C()
		case <-due:
			timer, due = nil, nil
			d.expired(ctx)
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

// State returns the desired state and what the device reported.
func (d *Device) State() any {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.st
	if d.o.Deadline > 0 {
		f := d.feedbackLocked()
		st.Feedback = &f
	}
	return st
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

// batchLocked encodes the desired state: the change the last action
// asked for, or (whole) everything, for a re-assert.
func (d *Device) batchLocked(whole bool) batch {
	st := d.st
	st.Error, st.Feedback = "", nil
	enc := st
	if whole {
		enc.Action = ""
	}
	seq := d.rpc.Add(1)
	b := batch{st: st, seq: seq, msgs: Encode(d.o, enc, seq, d.c.Prefix())}
	if !whole {
		b.planned, b.rep, b.applied = d.planned, d.rep, d.applied
	}
	return b
}

// z2mEffect is the Zigbee2MQTT effect value that plays the cue effect,
// or "" when the device does not expose one.
func z2mEffect(exposed []string, effect string) string {
	want := map[string]string{"flash": "blink"}[effect]
	for _, e := range exposed {
		if e == want && want != "" {
			return e
		}
	}
	return ""
}

// Encode returns the messages that put a device of o's kind in state s.
// seq is the Shelly RPC request id; prefix is the box's topic prefix,
// where Shelly answers go.
func Encode(o Opts, s State, seq int64, prefix string) []Message {
	r, g, b, colErr := cue.ParseColor(s.Color)
	hasColor := colErr == nil
	switch o.Kind {
	case WLED:
		// The JSON API changes only the keys it is given: on, off and
		// level leave the segment (its colour and running effect) alone.
		// A State with no Action is the whole state (a re-assert).
		var segs []map[string]any
		seg := map[string]any{}
		if s.Effect != "" && (s.Action == "" || s.Action == string(cue.Effect)) {
			seg["fx"] = wledFX[s.Effect]
		}
		if hasColor && (s.Action == "" || s.Action == string(cue.Color) || s.Action == string(cue.Effect)) {
			seg["col"] = [][3]uint8{{r, g, b}}
		}
		if len(seg) > 0 {
			segs = []map[string]any{seg}
		}
		return []Message{{o.Topic + "/api", mustJSON(struct {
			On  bool             `json:"on"`
			Bri int              `json:"bri"`
			Seg []map[string]any `json:"seg,omitempty"`
		}{s.On, scale(s.Brightness, 255), segs})}}
	case Tasmota:
		t := "cmnd/" + o.Topic + "/"
		power := t + tasmotaPower(o.Channel)
		if !s.On {
			return []Message{{power, []byte("OFF")}}
		}
		var m []Message
		if hasColor && (s.Action == "" || s.Action == string(cue.Color) || s.Action == string(cue.Effect)) {
			// Color r,g,b (decimal); Tasmota switches the light on with it.
			m = append(m, Message{t + "Color", fmt.Appendf(nil, "%d,%d,%d", r, g, b)})
		}
		m = append(m, Message{t + "Dimmer", []byte(strconv.Itoa(s.Brightness))}, Message{power, []byte("ON")})
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
		}{seq, shellySrc(o, prefix), method, params})}}
	case Z2M:
		type col struct {
			Hex string `json:"hex"`
		}
		v := struct {
			State      string `json:"state"`
			Brightness *int   `json:"brightness,omitempty"`
			Color      *col   `json:"color,omitempty"`
			Effect     string `json:"effect,omitempty"`
		}{State: "OFF"}
		if s.On {
			v.State = "ON"
			bri := scale(s.Brightness, 254)
			v.Brightness = &bri
			if hasColor {
				v.Color = &col{fmt.Sprintf("#%02x%02x%02x", r, g, b)}
			}
			if s.Action == string(cue.Effect) {
				v.Effect = z2mEffect(o.Effects, s.Effect)
			}
		}
		return []Message{{o.Base + "/" + o.Topic + "/set", mustJSON(v)}}
	}
	return nil
}

// tasmotaPower is the Power command of relay ch: POWER for the first
// (or only) relay, POWER<n> for relay n.
func tasmotaPower(ch int) string {
	if ch <= 0 {
		return "POWER"
	}
	return "POWER" + strconv.Itoa(ch)
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
