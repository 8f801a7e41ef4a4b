// Package mqtttest starts real brokers for tests: Mosquitto (the one
// venues run) on a free loopback port, and the embedded broker; and gives
// tests a plain subscriber/publisher.
package mqtttest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"fieldkit/internal/broker"
)

// Mosquitto is a mosquitto process owned by a test.
type Mosquitto struct {
	Addr string // 127.0.0.1:port
	t    testing.TB
	bin  string
	conf string
	mu   sync.Mutex
	cmd  *exec.Cmd
}

// FindMosquitto returns the mosquitto binary, or fails the test with how
// to get it: the README's test command installs it.
func FindMosquitto(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("FIELDKIT_MOSQUITTO"); p != "" {
		return p
	}
	if p, err := exec.LookPath("mosquitto"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatal("mosquitto is not installed: run ./scripts/test.sh (it installs it) or apt-get install mosquitto")
	return ""
}

// FreePort returns a loopback address with a port free right now.
func FreePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// StartMosquitto runs mosquitto on a free loopback port until the test ends.
func StartMosquitto(t testing.TB) *Mosquitto {
	t.Helper()
	m := &Mosquitto{t: t, bin: FindMosquitto(t), Addr: FreePort(t)}
	_, port, _ := net.SplitHostPort(m.Addr)
	m.conf = filepath.Join(t.TempDir(), "mosquitto.conf")
	conf := fmt.Sprintf("listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n", port)
	if err := os.WriteFile(m.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	m.Start()
	t.Cleanup(m.Stop)
	return m
}

// Start (re)starts the process on the same port and waits until it accepts.
func (m *Mosquitto) Start() {
	m.t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil {
		return
	}
	cmd := exec.Command(m.bin, "-c", m.conf)
	if err := cmd.Start(); err != nil {
		m.t.Fatalf("start mosquitto: %v", err)
	}
	m.cmd = cmd
	if err := WaitListening(m.Addr, 10*time.Second); err != nil {
		m.t.Fatalf("mosquitto: %v", err)
	}
}

// Stop kills the process (like a crashed broker) and waits for it.
func (m *Mosquitto) Stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return
	}
	_ = m.cmd.Process.Kill()
	_ = m.cmd.Wait()
	m.cmd = nil
}

// URL is the broker's tcp:// URL.
func (m *Mosquitto) URL() string { return "tcp://" + m.Addr }

// WaitListening polls addr until a TCP connect succeeds.
func WaitListening(addr string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not listening after %v: %w", addr, within, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// StartEmbedded runs the embedded broker on a free loopback port until the
// test ends, and returns its tcp:// URL.
func StartEmbedded(t testing.TB) string {
	t.Helper()
	b, err := broker.New(broker.Options{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = b.Run(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })
	if err := WaitListening(b.Addr(), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	return "tcp://" + b.Addr()
}

// Msg is one message a test client received.
type Msg struct {
	Topic    string
	Payload  string
	Retained bool
}

// Client is a plain MQTT client for tests.
type Client struct {
	c paho.Client
	t testing.TB
}

// Connect connects a test client to url.
func Connect(t testing.TB, url, id string) *Client {
	t.Helper()
	o := paho.NewClientOptions().AddBroker(url).SetClientID(id).SetCleanSession(true).
		SetAutoReconnect(true).SetConnectRetry(true).SetConnectRetryInterval(100 * time.Millisecond).
		SetMaxReconnectInterval(500 * time.Millisecond).SetOrderMatters(true)
	c := paho.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("test client connect %s: %v", url, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return &Client{c: c, t: t}
}

// Subscribe returns a channel with every message on filter.
func (c *Client) Subscribe(filter string) <-chan Msg {
	c.t.Helper()
	ch := make(chan Msg, 1024)
	tok := c.c.Subscribe(filter, 1, func(_ paho.Client, m paho.Message) {
		select {
		case ch <- Msg{Topic: m.Topic(), Payload: string(m.Payload()), Retained: m.Retained()}:
		default:
		}
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		c.t.Fatalf("subscribe %s: %v", filter, tok.Error())
	}
	return ch
}

// Publish sends a message and waits for the broker.
func (c *Client) Publish(topic string, qos byte, retained bool, payload string) {
	c.t.Helper()
	tok := c.c.Publish(topic, qos, retained, payload)
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		c.t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// Paho exposes the underlying client.
func (c *Client) Paho() paho.Client { return c.c }

// Await waits for a message on ch for which ok returns true.
func Await(t testing.TB, ch <-chan Msg, within time.Duration, what string, ok func(Msg) bool) Msg {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case m := <-ch:
			if ok(m) {
				return m
			}
		case <-deadline:
			t.Fatalf("timed out after %v waiting for %s", within, what)
			return Msg{}
		}
	}
}
