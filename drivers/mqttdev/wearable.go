package mqttdev

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"fieldkit/drivers/cue"
	"fieldkit/internal/clock"
	"fieldkit/internal/deps"
	"fieldkit/internal/event"
	"fieldkit/internal/topic"
)

// DefaultAckTimeout is how long a wearable has to acknowledge a cue
// before it is sent again, and again before the fallback takes over.
const DefaultAckTimeout = 2 * time.Second

// WearableOpts configure a wearable.
type WearableOpts struct {
	// Name is the output's name in the config.
	Name string
	// ID is the wearable's id in its topics (default Name).
	ID string
	// Fallback plays the cue when the wearable does not answer (a cue
	// lamp in the presenter's sight); nil means only the alert.
	Fallback cue.Target
	// AckTimeout is the wait for an ack after each send.
	AckTimeout time.Duration
	// Bus receives the alert event cue/<id>/alert; nil means log only.
	Bus   Events
	Clock clock.Clock
	Log   *slog.Logger
	// NewID makes cue ids; the default is unique per process run, so a
	// wearable that drops repeated ids never drops a fresh cue after the
	// agent restarts.
	NewID func() string
	// Metrics records acks, misses and fallbacks (nil: none).
	Metrics *cue.Metrics
}

// Command is the payload on <prefix>/cue/<wearable>/cmd.
type Command struct {
	ID      string `json:"id"`
	Pattern string `json:"pattern"`
	// Deadline is when the cue is stale: the wearable must not play it
	// later, because by then the fallback has played it.
	Deadline string `json:"deadline"`
}

// Ack is the payload on <prefix>/cue/<wearable>/ack.
type Ack struct {
	ID string `json:"id"`
}

// Alert is the event on cue/<wearable>/alert.
type Alert struct {
	Wearable string `json:"wearable"`
	Output   string `json:"output"`
	Cue      string `json:"cue"`
	Pattern  string `json:"pattern"`
	Reason   string `json:"reason"`
	Fallback string `json:"fallback,omitempty"`
	Error    string `json:"error,omitempty"`
}

// WearableState is the last cue and how it went.
type WearableState struct {
	Cue     string `json:"cue,omitempty"`
	Pattern string `json:"pattern,omitempty"`
	// Status is sending, acked, fallback or cancelled.
	Status string `json:"status,omitempty"`
	Sends  int    `json:"sends"`
	AckMs  int64  `json:"ack_ms,omitempty"`
	Acks   uint64 `json:"acks"`
	Missed uint64 `json:"missed"`
}

// Wearable sends haptic cues to a fieldkit wearable. It implements
// cue.Target.
type Wearable struct {
	c   Conn
	o   WearableOpts
	clk clock.Clock
	log *slog.Logger
	run cue.Runner

	cmdTopic, ackTopic string

	mu      sync.Mutex
	st      WearableState
	waiting map[string]chan struct{} // cue id → acked
}

var idSeq atomic.Uint64

func defaultNewID() func() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	run := hex.EncodeToString(b[:])
	return func() string { return fmt.Sprintf("%s-%d", run, idSeq.Add(1)) }
}

// NewWearable subscribes to the wearable's ack topic.
func NewWearable(c Conn, opts *WearableOpts) (*Wearable, error) {
	if opts == nil {
		return nil, fmt.Errorf("%w: no options", ErrBadOpts)
	}
	o := *opts
	if o.ID == "" {
		o.ID = o.Name
	}
	if o.ID == "" || topic.ValidName(o.ID) != nil || len(o.ID) > 64 {
		return nil, fmt.Errorf("%w: wearable id %q: expected one topic level", ErrBadOpts, o.ID)
	}
	for i := 0; i < len(o.ID); i++ {
		if o.ID[i] == '/' {
			return nil, fmt.Errorf("%w: wearable id %q: expected one topic level, without '/'", ErrBadOpts, o.ID)
		}
	}
	if o.Name == "" {
		o.Name = o.ID
	}
	if o.AckTimeout <= 0 {
		o.AckTimeout = DefaultAckTimeout
	}
	o.Clock, o.Log = deps.Clock(o.Clock), deps.Log(o.Log)
	if o.NewID == nil {
		o.NewID = defaultNewID()
	}
	w := &Wearable{c: c, o: o, clk: o.Clock, log: o.Log.With("output", o.Name, "wearable", o.ID),
		cmdTopic: topic.Under(c.Prefix(), topic.WearableCmd(o.ID)), ackTopic: topic.Under(c.Prefix(), topic.WearableAck(o.ID)), waiting: map[string]chan struct{}{}}
	if err := c.Handle(w.ackTopic, w.onAck); err != nil {
		return nil, fmt.Errorf("wearable %s: %w", o.ID, err)
	}
	return w, nil
}

func (w *Wearable) Name() string { return w.o.Name }
func (w *Wearable) Kind() string { return "wearable" }

// Check accepts haptic patterns only.
func (w *Wearable) Check(a cue.Action) error {
	if err := a.Validate(); err != nil {
		return err
	}
	if a.Do != cue.Haptic {
		return fmt.Errorf("only plays haptic patterns (do: haptic, pattern: ...), not %q: %w", a.Do, ErrUnsupported)
	}
	return nil
}

// ParseAck decodes an ack payload.
func ParseAck(b []byte) (Ack, error) {
	var a Ack
	if err := json.Unmarshal(b, &a); err != nil {
		return Ack{}, fmt.Errorf("ack is not JSON {\"id\": ...}: %v", err)
	}
	if a.ID == "" {
		return Ack{}, fmt.Errorf("ack has no id")
	}
	return a, nil
}

func (w *Wearable) onAck(_ context.Context, m event.Message) error {
	a, err := ParseAck(m.Payload)
	if err != nil {
		return err
	}
	w.mu.Lock()
	ch, ok := w.waiting[a.ID]
	w.mu.Unlock()
	if ok {
		select {
		case ch <- struct{}{}:
		default: // a second ack for the same cue (it was sent twice)
		}
	}
	return nil
}

// Apply sends the cue and follows it up (ack, one repeat, fallback) on
// the wearable's goroutine. A new cue replaces one still waiting.
func (w *Wearable) Apply(actx context.Context, a cue.Action) error {
	if err := w.Check(a); err != nil {
		return err
	}
	start := w.clk.Now()
	planned, rp := cue.Planned(actx), cue.ReporterOf(actx)
	cmd := Command{ID: w.o.NewID(), Pattern: a.Pattern,
		Deadline: start.Add(2 * w.o.AckTimeout).UTC().Format("2006-01-02T15:04:05.000Z07:00")}
	payload := mustJSON(cmd)
	acked := make(chan struct{}, 1)
	w.mu.Lock()
	w.waiting[cmd.ID] = acked
	w.mu.Unlock()
	w.run.Go(func(ctx context.Context) {
		defer func() {
			w.mu.Lock()
			delete(w.waiting, cmd.ID)
			w.mu.Unlock()
		}()
		w.setState(func(s *WearableState) {
			s.Cue, s.Pattern, s.Status, s.Sends, s.AckMs = cmd.ID, cmd.Pattern, "sending", 0, 0
		})
		for send := 1; send <= 2; send++ {
			sent := w.clk.Now()
			pctx, cancel := context.WithTimeout(ctx, w.o.AckTimeout)
			err := w.c.Publish(pctx, w.cmdTopic, 1, false, payload)
			cancel()
			if err != nil && ctx.Err() == nil {
				w.o.Metrics.PublishFailed(w.o.Name, w.Kind())
				w.log.Warn("wearable cue not published", "cue", cmd.ID, "send", send, "err", err)
			}
			w.setState(func(s *WearableState) { s.Sends = send })
			if send == 1 {
				cue.Report(rp, w.o.Name, cue.Sent, sent, "")
			}
			tm := w.clk.NewTimer(w.o.AckTimeout - w.clk.Since(sent))
			select {
			case <-acked:
				tm.Stop()
				now := w.clk.Now()
				w.o.Metrics.Confirmed(w.o.Name, w.Kind(), planned, start, now)
				ms := now.Sub(start).Milliseconds()
				w.setState(func(s *WearableState) { s.Status, s.AckMs = "acked", ms; s.Acks++ })
				cue.Report(rp, w.o.Name, cue.Confirmed, now, "")
				return
			case <-ctx.Done():
				tm.Stop()
				w.setState(func(s *WearableState) { s.Status = "cancelled" })
				cue.Report(rp, w.o.Name, cue.Superseded, w.clk.Now(), "")
				return
			case <-tm.C():
				w.o.Metrics.Missed(w.o.Name)
			}
		}
		w.o.Metrics.FellBack(w.o.Name)
		cue.Report(rp, w.o.Name, cue.Failed, w.clk.Now(), fmt.Sprintf("no ack after 2 sends in %v", 2*w.o.AckTimeout))
		w.fallback(ctx, cmd, a)
	})
	return nil
}

func (w *Wearable) fallback(ctx context.Context, cmd Command, a cue.Action) {
	w.setState(func(s *WearableState) { s.Status = "fallback"; s.Missed++ })
	al := Alert{Wearable: w.o.ID, Output: w.o.Name, Cue: cmd.ID, Pattern: cmd.Pattern,
		Reason: fmt.Sprintf("no ack from the wearable after 2 sends in %v", 2*w.o.AckTimeout)}
	if f := w.o.Fallback; f != nil {
		al.Fallback = f.Name()
		if err := f.Apply(ctx, fallbackAction(f, a)); err != nil {
			al.Error = err.Error()
		}
	}
	w.log.Error("wearable did not acknowledge a cue; fallback fired", "cue", cmd.ID, "pattern", cmd.Pattern, "fallback", al.Fallback, "err", al.Error)
	if w.o.Bus != nil {
		w.o.Bus.Publish(topic.WearableAlert(w.o.ID), mustJSON(al))
	}
}

// fallbackAction is the cue as the fallback output can show it: the
// pattern itself on a haptic-capable output (a lamp flashes it), else a
// blink per pulse, else plain on.
func fallbackAction(f cue.Target, a cue.Action) cue.Action {
	if f.Check(a) == nil {
		return a
	}
	b := cue.Action{Do: cue.Blink, Period: 500 * time.Millisecond, Count: len(cue.Patterns[a.Pattern].Pulses)}
	if f.Check(b) == nil {
		return b
	}
	return cue.Action{Do: cue.On}
}

func (w *Wearable) setState(f func(*WearableState)) {
	w.mu.Lock()
	f(&w.st)
	w.mu.Unlock()
}

// State returns the last cue's progress.
func (w *Wearable) State() any {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.st
}

// Close stops waiting for any ack. A wearable cue is an event, not a
// state: nothing is re-sent after a reconnect, and nothing is switched off.
func (w *Wearable) Close() error {
	w.run.Stop()
	return nil
}

var _ cue.Target = (*Wearable)(nil)
