package mqttdev

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"fieldkit/internal/mqttc"
	"fieldkit/internal/topic"
)

// fakeConn records publishes and lets a test deliver messages and fire
// the reconnect hooks.
type fakeConn struct {
	mu       sync.Mutex
	pubs     []string // "topic qos retained payload"
	handlers map[string]mqttc.Handler
	hooks    []func()
	down     bool
}

func newFakeConn() *fakeConn { return &fakeConn{handlers: map[string]mqttc.Handler{}} }

func (f *fakeConn) Prefix() string { return "fieldkit/box1" }

func (f *fakeConn) Publish(_ context.Context, t string, qos byte, retained bool, p []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return errors.New("publish: mqtt: not connected")
	}
	f.pubs = append(f.pubs, fmt.Sprintf("%s q%d r=%v %s", t, qos, retained, p))
	return nil
}

func (f *fakeConn) Handle(filter string, h mqttc.Handler) error {
	if err := topic.ValidFilter(filter); err != nil {
		return err
	}
	f.mu.Lock()
	f.handlers[filter] = h
	f.mu.Unlock()
	return nil
}

func (f *fakeConn) OnConnect(h func()) {
	f.mu.Lock()
	f.hooks = append(f.hooks, h)
	f.mu.Unlock()
}

func (f *fakeConn) reconnect() {
	f.mu.Lock()
	hs := append([]func(){}, f.hooks...)
	f.mu.Unlock()
	for _, h := range hs {
		h()
	}
}

func (f *fakeConn) deliver(t string, payload string) error {
	f.mu.Lock()
	var h mqttc.Handler
	for filter, hh := range f.handlers {
		if topic.Match(filter, t) {
			h = hh
		}
	}
	f.mu.Unlock()
	if h == nil {
		return fmt.Errorf("nobody handles %s", t)
	}
	return h(context.Background(), mqttc.Message{Topic: t, Payload: []byte(payload)})
}

func (f *fakeConn) take() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.pubs
	f.pubs = nil
	return p
}

// waitPubs waits until n publishes were recorded and returns them.
func (f *fakeConn) waitPubs(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		f.mu.Lock()
		got := len(f.pubs)
		f.mu.Unlock()
		if got >= n {
			return f.take()
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d publishes: %q", got, n, f.take())
		}
		time.Sleep(time.Millisecond)
	}
}
