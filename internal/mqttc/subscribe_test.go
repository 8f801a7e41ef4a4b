package mqttc

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"fieldkit/internal/mqtttest"
	"fieldkit/internal/testutil"
)

// A cancelled handler gets nothing more, the filter's other handler
// still does, and cancelling the last one drops the route, so that a
// reconnect does not subscribe it again.
func TestSubscribeCancel(t *testing.T) {
	m := mqtttest.StartMosquitto(t)
	c, _ := startConn(t, m.URL())
	testutil.WaitFor(t, 10*time.Second, "connected", c.Connected)

	var n1, n2, marks atomic.Int32
	count := func(n *atomic.Int32) Handler {
		return func(context.Context, Message) error { n.Add(1); return nil }
	}
	// A retained message reaches each handler as it subscribes.
	cl := mqtttest.Connect(t, m.URL(), "sender")
	cl.Publish("ext/a", 1, true, "x")
	cancel1, err := c.Subscribe("ext/a", count(&n1))
	if err != nil {
		t.Fatal(err)
	}
	cancel2, err := c.Subscribe("ext/a", count(&n2))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Subscribe("ext/mark", count(&marks)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Subscribe("ext/#/bad", count(&marks)); err == nil {
		t.Fatal("a malformed filter was accepted")
	}
	testutil.WaitFor(t, 10*time.Second, "both handlers subscribed", func() bool { return n1.Load() > 0 && n2.Load() > 0 })
	cancel1()
	cancel1() // twice is harmless
	before1, before2 := n1.Load(), n2.Load()
	cl.Publish("ext/a", 1, false, "y")
	testutil.WaitFor(t, 10*time.Second, "the remaining handler", func() bool { return n2.Load() > before2 })
	if n1.Load() != before1 {
		t.Fatalf("the cancelled handler got %d more messages", n1.Load()-before1)
	}

	cancel2()
	c.mu.Lock()
	_, kept := c.routes["ext/a"]
	c.mu.Unlock()
	if kept {
		t.Fatal("the route outlived its last handler")
	}
	// Messages on ext/a, then a mark on another filter: once the mark is
	// in, ext/a (sent first, same QoS, same sender) was handled if at all.
	after2 := n2.Load()
	m0 := marks.Load()
	cl.Publish("ext/a", 1, false, "z")
	cl.Publish("ext/mark", 1, false, "m")
	testutil.WaitFor(t, 10*time.Second, "the mark", func() bool { return marks.Load() > m0 })
	if n2.Load() != after2 {
		t.Fatal("a handler got a message after its cancel")
	}
}
