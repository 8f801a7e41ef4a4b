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
	// MaxReconnect caps the reconnect backoff (0: 30 s).
	MaxReconnect time.Duration
	Log          *slog.Logger
}

// Message is one received publish (the type is shared through
// internal/event, so that its users need not import this package).
type Message = event.Message

// Handler handles one message. An error is answered on <topic>/error and
// logged; it never stops the connection.
type Handler = event.Handler

type route struct {
	qos byte
	hs  []Handler
}

// Conn is the MQTT connection. Create it with New, then call Run.
type Conn struct {
	o      Options
	client paho.Client
	log    *slog.Logger

	ctx       atomic.Pointer[context.Context]
	connected atomic.Bool
	connects  atomic.Uint64

	mu       sync.Mutex
	routes   map[string]*route
	retained map[string][]byte
	order    []string // retained topics in first-set order
	onConn   []func()
}

// StatusTopic is where the box announces online/offline.
func (c *Conn) StatusTopic() string { return c.o.Prefix + "/status" }

// New prepares a connection; nothing is dialled until Run.
func New(o Options) *Conn {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.MaxPayload == 0 {
		o.MaxPayload = 256 << 10
	}
	if o.MaxReconnect == 0 {
		o.MaxReconnect = 30 * time.Second
	}
	c := &Conn{o: o, log: o.Log.With("part", "mqtt"), routes: map[string]*route{}, retained: map[string][]byte{}}
	bg := context.Background()
	c.ctx.Store(&bg)

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
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(time.Second).
		SetMaxReconnectInterval(o.MaxReconnect).
		SetBinaryWill(c.StatusTopic(), []byte("offline"), 1, true).
		SetOnConnectHandler(func(paho.Client) { c.onConnect() }).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			c.connected.Store(false)
			c.log.Warn("MQTT connection lost; reconnecting", "broker", o.URL, "err", err)
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

// Run connects (retrying until the broker answers) and stays connected
// until ctx ends; then it publishes offline and disconnects cleanly.
func (c *Conn) Run(ctx context.Context) error {
	c.ctx.Store(&ctx)
	c.log.Info("connecting to MQTT broker", "broker", c.o.URL, "client_id", c.o.ClientID)
	tok := c.client.Connect()
	// With ConnectRetry the token completes only once connected (or on a
	// fatal error such as bad credentials), so wait for it in the
	// background and keep serving until ctx ends.
	errc := make(chan error, 1)
	go func() {
		tok.Wait()
		errc <- tok.Error()
	}()
	select {
	case err := <-errc:
		if err != nil {
			return fmt.Errorf("mqtt %s: %w", c.o.URL, err)
		}
	case <-ctx.Done():
	}
	<-ctx.Done()
	if c.client.IsConnectionOpen() {
		// A clean disconnect does not fire the will, so say offline ourselves.
		t := c.client.Publish(c.StatusTopic(), 1, true, []byte("offline"))
		t.WaitTimeout(time.Second)
	}
	c.client.Disconnect(250)
	c.connected.Store(false)
	return nil
}

func (c *Conn) onConnect() {
	c.connects.Add(1)
	c.log.Info("MQTT connected", "broker", c.o.URL)
	c.mu.Lock()
	c.client.Publish(c.StatusTopic(), 1, true, []byte("online"))
	for f, r := range c.routes {
		c.subscribeLocked(f, r)
	}
	for _, t := range c.order {
		c.client.Publish(t, 1, true, c.retained[t])
	}
	hooks := append([]func(){}, c.onConn...)
	c.mu.Unlock()
	c.connected.Store(true)
	for _, h := range hooks {
		h()
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
	if err := topic.ValidFilter(filter); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.routes[filter]
	if !ok {
		r = &route{qos: 1}
		c.routes[filter] = r
	}
	r.hs = append(r.hs, h)
	if c.client.IsConnectionOpen() {
		c.subscribeLocked(filter, r)
	}
	return nil
}

func (c *Conn) subscribeLocked(filter string, r *route) {
	hs := append([]Handler(nil), r.hs...)
	tok := c.client.Subscribe(filter, r.qos, func(_ paho.Client, m paho.Message) {
		c.dispatch(hs, Message{Topic: m.Topic(), Payload: m.Payload(), Retained: m.Retained()})
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
var ErrNotConnected = errors.New("mqtt: not connected")

// Publish sends payload on t and waits for the broker (QoS 1) or the
// socket (QoS 0), up to ctx or 5 s.
func (c *Conn) Publish(ctx context.Context, t string, qos byte, retained bool, payload []byte) error {
	if !c.client.IsConnectionOpen() {
		return fmt.Errorf("publish %s: %w", t, ErrNotConnected)
	}
	tok := c.client.Publish(t, qos, retained, payload)
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

// SetRetained records the agent's current state for t and publishes it
// retained; it is published again after every reconnect. It never blocks
// on the network.
func (c *Conn) SetRetained(t string, payload []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.retained[t]; !ok {
		c.order = append(c.order, t)
	}
	c.retained[t] = append([]byte(nil), payload...)
	if c.client.IsConnectionOpen() {
		c.client.Publish(t, 1, true, payload)
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
		c.client.Publish(t, 1, true, nil)
	}
}

// Retained returns the agent's current value for t.
func (c *Conn) Retained(t string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.retained[t]
	return b, ok
}
