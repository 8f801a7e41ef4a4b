package devsim

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"fieldkit/internal/topic"
)

// Cue is a wearable's command, as the agent sends it on
// <prefix>/cue/<id>/cmd.
type Cue struct {
	ID       string    `json:"id"`
	Pattern  string    `json:"pattern"`
	Deadline time.Time `json:"deadline"`
}

// ParseCue decodes a cue command. A cue without id, pattern or deadline
// is refused: the wearable could not ack it, play it, or tell it stale.
func ParseCue(b []byte) (Cue, error) {
	var c Cue
	if err := json.Unmarshal(b, &c); err != nil {
		return Cue{}, fmt.Errorf("cue is not JSON {\"id\", \"pattern\", \"deadline\"}: %w", err)
	}
	switch {
	case c.ID == "":
		return Cue{}, errors.New("cue has no id")
	case c.Pattern == "":
		return Cue{}, errors.New("cue has no pattern")
	case c.Deadline.IsZero():
		return Cue{}, errors.New("cue has no deadline")
	}
	return c, nil
}

// seenCues is how many recent cue ids a wearable remembers, to play a
// repeat (sent again because its ack was lost) only once.
const seenCues = 16

// Wearable is a presenter's wearable on the broker. It takes the cues on
// <prefix>/cue/<id>/cmd and, after its latency, plays each and
// acknowledges it on .../ack with the cue's id. A cue whose deadline has
// passed is stale (the agent's fallback has played it by then): it is
// neither played nor acknowledged. A repeat of a cue it already played is
// acknowledged again, since the first ack may be what was lost, but not
// played twice.
type Wearable struct {
	c        paho.Client
	ackTopic string
	latency  time.Duration

	mute atomic.Bool
	// taken counts the messages that reached the wearable, muted or not.
	taken atomic.Int64
	// in carries the cues, in arrival order, to the wearable's one
	// goroutine, which plays and acknowledges them one by one.
	in        chan arrival
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once

	mu     sync.Mutex
	seen   []string
	played []string
	stale  int
}

// StartWearable connects the wearable id of the box whose topics are
// under prefix (fieldkit/<box>) to the broker at url (tcp://host:port).
func StartWearable(url, clientID, prefix, id string, latency time.Duration) (*Wearable, error) {
	if err := topic.ValidName(id); err != nil || strings.Contains(id, "/") {
		return nil, fmt.Errorf("devsim wearable %q: expected one topic level", id)
	}
	// In order, as the wearable's firmware takes them, and without
	// blocking the client's reader: take only queues.
	o := paho.NewClientOptions().AddBroker(url).SetClientID(clientID).SetCleanSession(true).SetOrderMatters(true)
	w := &Wearable{c: paho.NewClient(o), ackTopic: topic.Under(prefix, topic.WearableAck(id)), latency: latency,
		in: make(chan arrival, 64), stop: make(chan struct{}), done: make(chan struct{})}
	if tok := w.c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return nil, fmt.Errorf("devsim wearable %s: connect: %v", id, tok.Error())
	}
	cmd := topic.Under(prefix, topic.WearableCmd(id))
	tok := w.c.Subscribe(cmd, 1, func(_ paho.Client, m paho.Message) { w.take(m.Payload()) })
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		w.c.Disconnect(0)
		return nil, fmt.Errorf("devsim wearable subscribe %s: %v", cmd, tok.Error())
	}
	go w.loop()
	return w, nil
}

// Close disconnects the wearable and stops its goroutine.
func (w *Wearable) Close() {
	w.closeOnce.Do(func() {
		w.c.Disconnect(100)
		close(w.stop)
	})
	<-w.done
}

// Mute switches the wearable off (true): cues reach it, it plays and
// acknowledges nothing.
func (w *Wearable) Mute(m bool) { w.mute.Store(m) }

// Played are the patterns played so far, once per cue.
func (w *Wearable) Played() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.played...)
}

// Stale is how many cues arrived after their deadline.
func (w *Wearable) Stale() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stale
}

// arrival is a cue and when it reached the wearable.
type arrival struct {
	c  Cue
	at time.Time
}

func (w *Wearable) take(p []byte) {
	w.taken.Add(1)
	if w.mute.Load() {
		return
	}
	c, err := ParseCue(p)
	if err != nil {
		return
	}
	select {
	case w.in <- arrival{c, time.Now()}:
	default: // a flood: the firmware's queue is full, as a real one would be
	}
}

// loop plays and acknowledges each cue its latency after it arrived.
func (w *Wearable) loop() {
	defer close(w.done)
	tm := time.NewTimer(0)
	<-tm.C
	for {
		var a arrival
		select {
		case <-w.stop:
			return
		case a = <-w.in:
		}
		tm.Reset(time.Until(a.at.Add(w.latency)))
		select {
		case <-w.stop:
			tm.Stop()
			return
		case <-tm.C:
		}
		w.mu.Lock()
		switch {
		case time.Now().After(a.c.Deadline):
			w.stale++
			w.mu.Unlock()
			continue
		case !w.seenLocked(a.c.ID):
			w.played = append(w.played, a.c.Pattern)
		}
		w.mu.Unlock()
		ack, _ := json.Marshal(struct {
			ID string `json:"id"`
		}{a.c.ID})
		w.c.Publish(w.ackTopic, 1, false, ack)
	}
}

// seenLocked reports whether id was played already, and remembers it.
func (w *Wearable) seenLocked(id string) bool {
	for _, s := range w.seen {
		if s == id {
			return true
		}
	}
	if len(w.seen) == seenCues {
		w.seen = w.seen[1:]
	}
	w.seen = append(w.seen, id)
	return false
}
