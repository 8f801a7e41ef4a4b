package mqttc

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"fieldkit/internal/mqtttest"
	"fieldkit/internal/testutil"
)

func startConn(t *testing.T, url string) (*Conn, context.CancelFunc) {
	t.Helper()
	c := New(Options{URL: url, ClientID: "fieldkit-test", Prefix: "fieldkit/test", MaxPayload: 1024, MaxReconnect: 500 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Run did not return within 5 s of cancel")
		}
	})
	return c, cancel
}

func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, within, what, cond)
}

func TestOnlineRoutingAndErrors(t *testing.T) {
	for name, url := range map[string]func(*testing.T) string{
		"embedded":  func(t *testing.T) string { return mqtttest.StartEmbedded(t) },
		"mosquitto": func(t *testing.T) string { return mqtttest.StartMosquitto(t).URL() },
	} {
		t.Run(name, func(t *testing.T) {
			u := url(t)
			c, _ := startConn(t, u)
			var mu sync.Mutex
			var got []string
			if err := c.Handle("fieldkit/test/scene/+/run", func(ctx context.Context, m Message) error {
				if string(m.Payload) == "bad" {
					return errors.New("payload must be JSON")
				}
				if string(m.Payload) == "boom" {
					panic("handler bug")
				}
				mu.Lock()
				got = append(got, m.Topic)
				mu.Unlock()
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if err := c.Handle("bad/#/filter", nil); err == nil {
				t.Fatal("invalid filter accepted")
			}
			waitFor(t, 10*time.Second, "connect", c.Connected)
			c.SetRetained("fieldkit/test/battery/rig1/state", []byte(`{"percent":80}`))

			cl := mqtttest.Connect(t, u, "observer")
			all := cl.Subscribe("fieldkit/test/#")
			mqtttest.Await(t, all, 5*time.Second, "retained online", func(m mqtttest.Msg) bool {
				return m.Topic == "fieldkit/test/status" && m.Payload == "online" && m.Retained
			})
			cl.Publish("fieldkit/test/scene/drop/run", 1, false, "bad")
			e := mqtttest.Await(t, all, 5*time.Second, "error reply", func(m mqtttest.Msg) bool {
				return m.Topic == "fieldkit/test/scene/drop/run/error"
			})
			if !strings.Contains(e.Payload, "payload must be JSON") {
				t.Fatalf("error reply %q", e.Payload)
			}
			cl.Publish("fieldkit/test/scene/drop/run", 1, false, "boom")
			mqtttest.Await(t, all, 5*time.Second, "panic answered as error", func(m mqtttest.Msg) bool {
				return m.Topic == "fieldkit/test/scene/drop/run/error" && strings.Contains(m.Payload, "internal error")
			})
			cl.Publish("fieldkit/test/scene/drop/run", 1, false, strings.Repeat("x", 2000))
			mqtttest.Await(t, all, 5*time.Second, "oversize refused", func(m mqtttest.Msg) bool {
				return m.Topic == "fieldkit/test/scene/drop/run/error" && strings.Contains(m.Payload, "larger than")
			})
			cl.Publish("fieldkit/test/scene/drop/run", 1, false, "{}")
			waitFor(t, 5*time.Second, "handler call", func() bool {
				mu.Lock()
				defer mu.Unlock()
				return len(got) == 1 && got[0] == "fieldkit/test/scene/drop/run"
			})
		})
	}
}

// The broker dies and comes back: the agent reconnects by itself, says
// online again, re-publishes its retained state and resubscribes.
func TestReconnectAfterBrokerRestart(t *testing.T) {
	m := mqtttest.StartMosquitto(t)
	c, _ := startConn(t, m.URL())
	calls := make(chan string, 10)
	if err := c.Handle("fieldkit/test/cmd", func(ctx context.Context, msg Message) error {
		calls <- string(msg.Payload)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "first connect", c.Connected)
	c.SetRetained("fieldkit/test/printer/counter/state", []byte(`{"state":"ready"}`))

	m.Stop() // mosquitto runs without persistence: every retained message is gone
	waitFor(t, 10*time.Second, "disconnect noticed", func() bool { return !c.Connected() })
	c.SetRetained("fieldkit/test/printer/counter/state", []byte(`{"state":"paper_out"}`))
	m.Start()
	waitFor(t, 15*time.Second, "reconnect", func() bool { return c.Connected() && c.Connects() >= 2 })

	cl := mqtttest.Connect(t, m.URL(), "observer2")
	all := cl.Subscribe("fieldkit/test/#")
	mqtttest.Await(t, all, 5*time.Second, "retained online after restart", func(m mqtttest.Msg) bool {
		return m.Topic == "fieldkit/test/status" && m.Payload == "online" && m.Retained
	})
	mqtttest.Await(t, all, 5*time.Second, "latest retained state re-published", func(m mqtttest.Msg) bool {
		return m.Topic == "fieldkit/test/printer/counter/state" && m.Payload == `{"state":"paper_out"}` && m.Retained
	})
	waitFor(t, 5*time.Second, "resubscribed", func() bool {
		cl.Publish("fieldkit/test/cmd", 1, false, "ping")
		select {
		case p := <-calls:
			return p == "ping"
		case <-time.After(200 * time.Millisecond):
			return false
		}
	})
}

// On a clean stop the agent says offline itself (a clean disconnect does
// not fire the will).
func TestCleanStopSaysOffline(t *testing.T) {
	u := mqtttest.StartEmbedded(t)
	c, cancel := startConn(t, u)
	waitFor(t, 10*time.Second, "connect", c.Connected)
	cancel()
	waitFor(t, 5*time.Second, "disconnect", func() bool { return !c.Connected() })
	cl := mqtttest.Connect(t, u, "observer3")
	st := cl.Subscribe("fieldkit/test/status")
	mqtttest.Await(t, st, 5*time.Second, "retained offline", func(m mqtttest.Msg) bool {
		return m.Payload == "offline" && m.Retained
	})
}
