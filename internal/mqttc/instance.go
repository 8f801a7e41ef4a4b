package mqttc

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
	"unicode"

	"fieldkit/internal/topic"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// Instance names one running agent. It is published retained on
// <prefix>/instance after every connect, so that a second agent started
// with the same box id (a cloned image, a typo) can tell that the box id
// is taken before it connects with the box's client id, which would knock
// the first one off the broker, and the first one would knock it off in
// turn, forever.
type Instance struct {
	ID      string    `json:"id"`
	Host    string    `json:"host,omitempty"`
	PID     int       `json:"pid,omitempty"`
	Started time.Time `json:"started"`
}

// NewInstance describes this process.
func NewInstance() Instance {
	h, _ := os.Hostname()
	return Instance{ID: rand.Text()[:16], Host: h, PID: os.Getpid(), Started: time.Now().UTC().Truncate(time.Second)}
}

func (i Instance) String() string {
	s := "instance " + i.ID
	if i.Host != "" {
		s += " on host " + i.Host
	}
	if i.PID != 0 {
		s += fmt.Sprintf(" (pid %d)", i.PID)
	}
	if !i.Started.IsZero() {
		s += ", started " + i.Started.Format(time.RFC3339)
	}
	return s
}

// ParseInstance reads an instance payload from the broker, which any
// client may have written: it must be a JSON object with a short,
// printable id.
func ParseInstance(b []byte) (Instance, error) {
	var i Instance
	if len(b) > 1024 {
		return i, fmt.Errorf("instance payload of %d bytes; expected at most 1024", len(b))
	}
	if err := json.Unmarshal(b, &i); err != nil {
		return Instance{}, fmt.Errorf("instance payload: %w", err)
	}
	if i.ID == "" || len(i.ID) > 64 {
		return Instance{}, errors.New("instance payload: id must be 1-64 characters")
	}
	for _, s := range []string{i.ID, i.Host} {
		if len(s) > 255 {
			return Instance{}, errors.New("instance payload: host is longer than 255 characters")
		}
		for _, r := range s {
			if !unicode.IsPrint(r) {
				return Instance{}, fmt.Errorf("instance payload: unprintable character %q", r)
			}
		}
	}
	return i, nil
}

// Duplicate is another agent seen with this box id.
type Duplicate struct {
	Other Instance  `json:"other"`
	Seen  time.Time `json:"seen"`
	// Refused is true on the agent that found the box id taken and
	// stays off the broker; false on the one that keeps running and saw
	// the other ask.
	Refused bool `json:"refused"`
}

// Status is the broker link as the health and status APIs show it.
type Status struct {
	Connected bool       `json:"connected"`
	Reason    string     `json:"reason,omitempty"`
	Duplicate *Duplicate `json:"duplicate,omitempty"`
}

// dupState tracks duplicates. A refused agent probes again every
// probeEvery; the running one counts a duplicate as present while the
// other's probes keep coming.
type dupState struct {
	mu   sync.Mutex
	last *Duplicate
}

func (d *dupState) set(v *Duplicate) {
	d.mu.Lock()
	d.last = v
	d.mu.Unlock()
}

func (d *dupState) get(now time.Time, keep time.Duration) *Duplicate {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.last == nil || (!d.last.Refused && now.Sub(d.last.Seen) > keep) {
		return nil
	}
	v := *d.last
	return &v
}

func (c *Conn) instanceTopic() string { return topic.Under(c.o.Prefix, topic.Instance) }
func (c *Conn) pingTopic() string     { return topic.Under(c.o.Prefix, topic.InstancePing) }
func (c *Conn) pongTopic() string     { return topic.Under(c.o.Prefix, topic.InstancePong) }

// errBoxTaken is what probe returns when a live agent answers.
var errBoxTaken = errors.New("box id taken")

// probe connects with a client id of its own and asks whether another
// live agent holds this box id: the retained status says online, the
// retained instance is not this one, and it answers a ping. A stale
// "online" (the broker has not yet noticed a dead agent) gets no answer.
func (c *Conn) probe(ctx context.Context) (Instance, error) {
	po := paho.NewClientOptions().AddBroker(c.o.URL).SetClientID(c.o.ClientID + "-probe-" + c.self.ID[:8]).
		SetUsername(c.o.Username).SetPassword(c.o.Password).SetCleanSession(true).SetStore(noStore{}).
		SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(3 * time.Second).
		SetOrderMatters(true)
	if c.o.TLS != nil {
		po.SetTLSConfig(c.o.TLS)
	}
	pc := paho.NewClient(po)
	if err := wait(ctx, pc.Connect(), 4*time.Second); err != nil {
		return Instance{}, fmt.Errorf("probe connect: %w", err)
	}
	defer pc.Disconnect(0)

	var mu sync.Mutex
	var status string
	var holder Instance
	pongs := make(chan Instance, 4)
	echo := make(chan struct{}, 1)
	onMsg := func(_ paho.Client, m paho.Message) {
		mu.Lock()
		defer mu.Unlock()
		switch m.Topic() {
		case c.StatusTopic():
			status = string(m.Payload())
		case c.instanceTopic():
			holder, _ = ParseInstance(m.Payload())
		case c.pingTopic():
			if i, err := ParseInstance(m.Payload()); err == nil && i.ID == c.self.ID {
				select {
				case echo <- struct{}{}:
				default:
				}
			}
		case c.pongTopic():
			if i, err := ParseInstance(m.Payload()); err == nil && i.ID != c.self.ID {
				select {
				case pongs <- i:
				default:
				}
			}
		}
	}
	subs := map[string]byte{c.pongTopic(): 1, c.pingTopic(): 1, c.StatusTopic(): 1, c.instanceTopic(): 1}
	if err := wait(ctx, pc.SubscribeMultiple(subs, onMsg), 4*time.Second); err != nil {
		return Instance{}, fmt.Errorf("probe subscribe: %w", err)
	}
	me, _ := json.Marshal(c.self)
	if err := wait(ctx, pc.Publish(c.pingTopic(), 1, false, me), 4*time.Second); err != nil {
		return Instance{}, fmt.Errorf("probe ping: %w", err)
	}
	// The broker sent the retained status and instance before it passed
	// our own ping back, and messages are handled in order: once the
	// echo is here, what is retained has been read.
	t0 := time.NewTimer(4 * time.Second)
	defer t0.Stop()
	select {
	case <-echo:
	case <-t0.C:
		return Instance{}, errors.New("probe: the broker did not pass the ping back")
	case <-ctx.Done():
		return Instance{}, ctx.Err()
	}
	mu.Lock()
	live := status == "online" && holder.ID != c.self.ID
	mu.Unlock()
	if !live {
		return Instance{}, nil
	}
	t := time.NewTimer(c.o.ProbeWait)
	defer t.Stop()
	select {
	case other := <-pongs:
		return other, errBoxTaken
	case <-t.C:
		return Instance{}, nil
	case <-ctx.Done():
		return Instance{}, ctx.Err()
	}
}

// onPing answers another agent's probe and remembers it: two agents with
// one box id must both say so.
func (c *Conn) onPing(_ context.Context, m Message) error {
	other, err := ParseInstance(m.Payload)
	if err != nil {
		return err
	}
	if other.ID == c.self.ID {
		return nil
	}
	c.log.Error("another agent with this box id is trying to connect; give each box its own box: id",
		"box_prefix", c.o.Prefix, "other", other.String())
	c.dup.set(&Duplicate{Other: other, Seen: time.Now().UTC()})
	c.notify()
	me, _ := json.Marshal(c.self)
	c.client.Publish(c.pongTopic(), 1, false, me)
	return nil
}

// onStatus puts "online" back if something (the will of a client that
// used this box's client id) said offline while this agent is connected.
func (c *Conn) onStatus(_ context.Context, m Message) error {
	if string(m.Payload) == "offline" && !c.stopping.Load() && c.client.IsConnectionOpen() {
		c.client.Publish(c.StatusTopic(), 1, true, []byte("online"))
	}
	return nil
}

func wait(ctx context.Context, tok paho.Token, within time.Duration) error {
	t := time.NewTimer(within)
	defer t.Stop()
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return errors.New("no answer from the broker")
	}
}
