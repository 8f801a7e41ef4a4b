// Package mqttc is the agent's single MQTT connection: it announces the box
// (retained online, last will offline), routes incoming messages to the
// parts' handlers, answers bad payloads on <topic>/error, and re-asserts
// every retained state the agent owns after each reconnect.
package mqttc

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"fieldkit/internal/backoff"
	"fieldkit/internal/clock"
	"fieldkit/internal/deps"
	"fieldkit/internal/event"
	"fieldkit/internal/topic"
)

// Options configure the connection.
type Options struct {
	URL      string // tcp://host:1883, ssl://host:8883
	ClientID string
	Username string
	Password string
	TLS      *tls.Config
	// Prefix is the root of the box's topics, "fieldkit/<box>".
	Prefix string
	// MaxPayload is the largest payload handed to a handler; larger ones
	// are answered on <topic>/error. 0 means 256 KiB.
	MaxPayload int
	// MaxReconnect caps the reconnect backoff (0: 2 s), so that the
	// agent is back within about 3 s of the broker's return: cues sent
	// meanwhile are lost.
	MaxReconnect time.Duration
	// Instance names this agent on <prefix>/instance (zero: made up from
	// the host, pid and a random id).
	Instance Instance
	// ProbeWait is how long a probe waits for another live agent with
	// this box id to answer (0: 2 s); ProbeEvery is how often an agent
	// that found its box id taken looks again (0: 10 s).
	ProbeWait  time.Duration
	ProbeEvery time.Duration
	// OnStatus is called (never with a lock held) whenever Status may
	// have changed.
	OnStatus func()
	Log      *slog.Logger
}

// Message is one received publish (the type is shared through
// internal/event, so that its users need not import this package).
type Message = event.Message

// Handler handles one message. An error is answered on <topic>/error and
// logged; it never stops the connection.
type Handler = event.Handler

type route struct {
	qos byte
	// hs are the route's handlers, replaced (never changed in place)
	// under Conn.mu and read without it by the delivery callback, so that
	// a removed handler is not called even though the broker subscription
	// (and its callback) stay.
	hs atomic.Pointer[[]entry]
}

type entry struct {
	id uint64
	h  Handler
}

func newRoute(hs ...Handler) *route {
	r := &route{qos: 1}
	es := make([]entry, len(hs))
	for i, h := range hs {
		es[i] = entry{h: h}
	}
	r.hs.Store(&es)
	return r
}

func (r *route) handlers() []Handler {
	es := *r.hs.Load()
	out := make([]Handler, len(es))
	for i, e := range es {
		out[i] = e.h
	}
	return out
}

// Conn is the MQTT connection. Create it with New, then call Run.
type Conn struct {
	o      Options
	client paho.Client
	log    *slog.Logger

	ctx       atomic.Pointer[context.Context]
	connected atomic.Bool
	connects  atomic.Uint64
	self      Instance
	stopping  atomic.Bool
	dup       dupState
	lost      chan error
	reason    atomic.Pointer[string]

	mu       sync.Mutex
	routes   map[string]*route
	nextID   uint64 // of route entries
	retained map[string][]byte
	order    []string // retained topics in first-set order
	onConn   []func()
}

// StatusTopic is where the box announces online/offline.
func (c *Conn) StatusTopic() string { return topic.Under(c.o.Prefix, topic.Status) }

// New prepares a connection; nothing is dialled until Run.
func New(o Options) *Conn {
	o.Log = deps.Log(o.Log)
	if o.MaxPayload == 0 {
		o.MaxPayload = 256 << 10
	}
	if o.MaxReconnect == 0 {
		o.MaxReconnect = 2 * time.Second
	}
	if o.ProbeWait == 0 {
		o.ProbeWait = 2 * time.Second
	}
	if o.ProbeEvery == 0 {
		o.ProbeEvery = 10 * time.Second
	}
	if o.Instance.ID == "" {
		o.Instance = NewInstance()
	}
	c := &Conn{o: o, log: o.Log.With("part", "mqtt"), routes: map[string]*route{}, retained: map[string][]byte{},
		self: o.Instance, lost: make(chan error, 1)}
	bg := context.Background()
	c.ctx.Store(&bg)
	r := "connecting to " + o.URL
	c.reason.Store(&r)
	me, _ := json.Marshal(c.self)
	c.retained[c.instanceTopic()] = me
	c.order = append(c.order, c.instanceTopic())
	c.routes[c.pingTopic()] = newRoute(c.onPing)
	c.routes[c.StatusTopic()] = newRoute(c.onStatus)

	po := paho.NewClientOptions().
		AddBroker(o.URL).
		SetClientID(o.ClientID).
		SetUsername(o.Username).
		SetPassword(o.Password).
		SetCleanSession(true).
		SetStore(noStore{}).
		SetOrderMatters(false).
		SetKeepAlive(15*time.Second).
		SetPingTimeout(5*time.Second).
		SetConnectTimeout(5*time.Second).
		SetWriteTimeout(5*time.Second).
		SetCustomOpenConnectionFn(openConn).
		// Run reconnects itself, so that every attempt first checks that
		// no other agent holds the box id.
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetBinaryWill(c.StatusTopic(), []byte("offline"), 1, true).
		SetOnConnectHandler(func(paho.Client) { c.onConnect() }).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			c.connected.Store(false)
			c.log.Warn("MQTT connection lost; reconnecting", "broker", o.URL, "err", err)
			c.setReason(fmt.Sprintf("connection to %s lost: %v; reconnecting", o.URL, err))
			select {
			case c.lost <- err:
			default:
			}
		})
	if o.TLS != nil {
		po.SetTLSConfig(o.TLS)
	}
	c.client = paho.NewClient(po)
	return c
}

// Prefix is the root of the box's topics.
func (c *Conn) Prefix() string { return c.o.Prefix }

// Connected reports whether the broker link is up now.
func (c *Conn) Connected() bool { return c.connected.Load() }

// Connects counts successful connections (1 after the first).
func (c *Conn) Connects() uint64 { return c.connects.Load() }

// Instance is this agent's name on <prefix>/instance.
func (c *Conn) Instance() Instance { return c.self }

// Status is the broker link now, with any other agent seen using this
// box id.
func (c *Conn) Status() Status {
	st := Status{Connected: c.connected.Load(), Duplicate: c.dup.get(time.Now(), 3*c.o.ProbeEvery)}
	if !st.Connected {
		st.Reason = *c.reason.Load()
	}
	return st
}

func (c *Conn) setReason(r string) {
	c.reason.Store(&r)
	c.notify()
}

func (c *Conn) notify() {
	if c.o.OnStatus != nil {
		c.o.OnStatus()
	}
}

// Run connects (retrying until the broker answers) and stays connected
// until ctx ends, reconnecting whenever the link drops; then it publishes
// offline and disconnects cleanly. Before each connect it checks that no
// other live agent holds the box id; if one does, it stays off the broker
// and looks again every ProbeEvery, rather than fight over the client id.
func (c *Conn) Run(ctx context.Context) error {
	c.ctx.Store(&ctx)
	c.log.Info("connecting to MQTT broker", "broker", c.o.URL, "client_id", c.o.ClientID, "instance", c.self.ID)
	c.notify()
	b := backoff.Backoff{Base: 250 * time.Millisecond, Cap: c.o.MaxReconnect}
	for {
		other, err := c.probe(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, errBoxTaken):
			d := &Duplicate{Other: other, Seen: time.Now().UTC(), Refused: true}
			c.dup.set(d)
			c.setReason(fmt.Sprintf("box id taken: another agent (%s) is connected to %s with this box's client id %s; this one does not take over; give each box its own box: id",
				other, c.o.URL, c.o.ClientID))
			c.log.Error("another agent with this box id is connected; not taking over; give each box its own box: id",
				"client_id", c.o.ClientID, "other", other.String(), "again_in", c.o.ProbeEvery)
			if backoff.Sleep(ctx, clock.Real(), c.o.ProbeEvery) != nil {
				return nil
			}
			continue
		case err != nil:
			// Unreachable, or the probe refused; the real connect says
			// which.
			c.log.Debug("MQTT probe failed", "err", err)
		default:
			if d := c.dup.get(time.Now(), 0); d != nil && d.Refused {
				c.dup.set(nil) // the other agent went away
			}
		}
		if err := wait(ctx, c.client.Connect(), 10*time.Second); err != nil {
			if ctx.Err() != nil {
				// A connect still in flight must not outlive Run.
				c.client.Disconnect(0)
				c.connected.Store(false)
				return nil
			}
			c.setReason(fmt.Sprintf("cannot connect to %s: %v", c.o.URL, err))
			c.log.Warn("MQTT connect failed; retrying", "broker", c.o.URL, "err", err)
			if backoff.Sleep(ctx, clock.Real(), b.Next()) != nil {
				return nil
			}
			continue
		}
		b.Reset()
		select {
		case <-c.lost:
			continue
		case <-ctx.Done():
		}
		c.stopping.Store(true)
		if c.client.IsConnectionOpen() {
			// A clean disconnect does not fire the will, so say offline ourselves.
			t := c.client.Publish(c.StatusTopic(), 1, true, []byte("offline"))
			t.WaitTimeout(time.Second)
		}
		c.client.Disconnect(250)
		c.connected.Store(false)
		c.setReason("stopped")
		return nil
	}
}

func (c *Conn) onConnect() {
	c.connects.Add(1)
	c.log.Info("MQTT connected", "broker", c.o.URL)
	// Subscriptions first, waited for, then "online" and the retained
	// state: whoever sees online may send a command at once and expect it
	// handled. Connected turns true once the broker has acknowledged it
	// all. Publishes are queued in order under the lock, so that a newer
	// SetRetained always lands after the value re-published here.
	c.mu.Lock()
	var toks []paho.Token
	for f, r := range c.routes {
		toks = append(toks, c.subscribeLocked(f, r))
	}
	c.mu.Unlock()
	c.await(toks)
	c.mu.Lock()
	toks = append(toks[:0], c.client.Publish(c.StatusTopic(), 1, true, []byte("online")))
	for _, t := range c.order {
		toks = append(toks, c.client.Publish(t, 1, true, c.retained[t]))
	}
	hooks := append([]func(){}, c.onConn...)
	c.mu.Unlock()
	c.await(toks)
	c.connected.Store(true)
	c.notify()
	for _, h := range hooks {
		h()
	}
}

// await waits for the broker to acknowledge toks, each for at most 5 s;
// a lost connection completes them early (and the next connect repeats
// everything).
func (c *Conn) await(toks []paho.Token) {
	for _, t := range toks {
		t.WaitTimeout(5 * time.Second)
	}
}

// OnConnect registers f to run after every (re)connect, for parts that
// must re-assert state other than retained topics.
func (c *Conn) OnConnect(f func()) {
	c.mu.Lock()
	c.onConn = append(c.onConn, f)
	c.mu.Unlock()
}

// Handle routes messages on filter (QoS 1 subscription) to h. Several
// handlers may share a filter. It subscribes now if connected, and again
// after every reconnect.
func (c *Conn) Handle(filter string, h Handler) error {
	_, err := c.Subscribe(filter, h)
	return err
}

// Subscribe is Handle with a way back: cancel removes h (at once: no
// message is handed to it after cancel returns), and the broker
// subscription with the filter's last handler. Calling cancel again does
// nothing.
func (c *Conn) Subscribe(filter string, h Handler) (cancel func(), err error) {
	if err := topic.ValidFilter(filter); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.routes[filter]
	if !ok {
		r = newRoute()
		c.routes[filter] = r
	}
	c.nextID++
	id := c.nextID
	es := append(append([]entry(nil), *r.hs.Load()...), entry{id: id, h: h})
	r.hs.Store(&es)
	if c.client.IsConnectionOpen() {
		c.subscribeLocked(filter, r)
	}
	return sync.OnceFunc(func() { c.unsubscribe(filter, r, id) }), nil
}

func (c *Conn) unsubscribe(filter string, r *route, id uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := *r.hs.Load()
	es := make([]entry, 0, len(old))
	for _, e := range old {
		if e.id != id {
			es = append(es, e)
		}
	}
	r.hs.Store(&es)
	if len(es) > 0 || c.routes[filter] != r {
		return
	}
	delete(c.routes, filter)
	if c.client.IsConnectionOpen() {
		// Not waited for: the route is gone, so a message still on its
		// way finds no handler; a reconnect does not subscribe again.
		c.client.Unsubscribe(filter)
	}
}

func (c *Conn) subscribeLocked(filter string, r *route) paho.Token {
	tok := c.client.Subscribe(filter, r.qos, func(_ paho.Client, m paho.Message) {
		c.dispatch(r.handlers(), Message{Topic: m.Topic(), Payload: m.Payload(), Retained: m.Retained()})
	})
	go func() {
		if !tok.WaitTimeout(10*time.Second) || tok.Error() == nil {
			return
		}
		if !c.client.IsConnectionOpen() {
			// Every route is subscribed again when the connection is back.
			c.log.Info("MQTT subscribe interrupted by the lost connection; it is repeated on reconnect", "filter", filter)
			return
		}
		c.log.Error("MQTT subscribe failed", "filter", filter, "err", tok.Error())
	}()
	return tok
}

func (c *Conn) dispatch(hs []Handler, m Message) {
	ctx := *c.ctx.Load()
	if len(m.Payload) > c.o.MaxPayload {
		c.replyError(m.Topic, fmt.Errorf("payload of %d bytes is larger than the %d-byte limit", len(m.Payload), c.o.MaxPayload))
		return
	}
	for _, h := range hs {
		if err := safeCall(ctx, h, m); err != nil {
			c.replyError(m.Topic, err)
		}
	}
}

func safeCall(ctx context.Context, h Handler, m Message) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("internal error handling the message: %v", v)
		}
	}()
	return h(ctx, m)
}

// ErrorReply is the JSON answered on <topic>/error.
type ErrorReply struct {
	Error string `json:"error"`
	Topic string `json:"topic"`
}

func (c *Conn) replyError(t string, err error) {
	c.log.Warn("bad MQTT message", "topic", t, "err", err)
	if strings.HasSuffix(t, "/error") {
		return // never answer an error with an error
	}
	b, _ := json.Marshal(ErrorReply{Error: err.Error(), Topic: t})
	c.client.Publish(t+"/error", 0, false, b)
}

// ErrNotConnected is returned by Publish while the broker is unreachable.
var ErrNotConnected = event.ErrNotConnected

// Publish sends payload on t and waits for the broker (QoS 1) or the
// socket (QoS 0), up to ctx or 5 s.
func (c *Conn) Publish(ctx context.Context, t string, qos byte, retained bool, payload []byte) error {
	return c.Send(t, qos, retained, payload)(ctx)
}

// Send hands payload on t to the connection now and returns a wait that
// does what Publish waits for. A cue's publish goes out from the
// goroutine that runs the cue, and is waited for elsewhere.
func (c *Conn) Send(t string, qos byte, retained bool, payload []byte) (wait func(context.Context) error) {
	if !c.client.IsConnectionOpen() {
		err := fmt.Errorf("publish %s: %w", t, ErrNotConnected)
		return func(context.Context) error { return err }
	}
	tok := c.client.Publish(t, qos, retained, payload)
	return func(ctx context.Context) error {
		select {
		case <-tok.Done():
			if err := tok.Error(); err != nil {
				return fmt.Errorf("publish %s: %w", t, err)
			}
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Second):
			return fmt.Errorf("publish %s: broker did not acknowledge in 5 s", t)
		}
	}
}

// SetRetained records the agent's current state for t and publishes it
// retained; it is published again after every reconnect. It never blocks
// on the network.
//
// The live publish is QoS 0: with no session store, QoS 1 would add
// nothing (a message lost with the connection is not resent; the
// reconnect re-publishes the state instead), and its PUBACK, a small
// segment the broker sends back, makes a broker without TCP_NODELAY
// (Mosquitto's default) hold the next message to the agent, a cue, until
// the agent's delayed ACK: about 40 ms.
func (c *Conn) SetRetained(t string, payload []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.retained[t]; !ok {
		c.order = append(c.order, t)
	}
	c.retained[t] = append([]byte(nil), payload...)
	if c.client.IsConnectionOpen() {
		c.client.Publish(t, 0, true, payload)
	}
}

// DropRetained forgets t and clears it on the broker.
func (c *Conn) DropRetained(t string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.retained[t]; !ok {
		return
	}
	delete(c.retained, t)
	for i, o := range c.order {
		if o == t {
			c.order = append(c.order[:i], c.order[i+1:]...)
			break
		}
	}
	if c.client.IsConnectionOpen() {
		c.client.Publish(t, 0, true, nil) // QoS 0: see SetRetained
	}
}

// Retained returns the agent's current value for t.
func (c *Conn) Retained(t string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.retained[t]
	return b, ok
}
