package mqttc

import (
	"io"
	"net"
	"testing"
	"time"

	"fieldkit/internal/testutil"
)

// A read with no answer is acknowledged by the timer; a write in time
// carries the ACK and leaves the timer nothing to do.
func TestQuickAckPushesUnansweredReads(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			peer <- c
		}
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	q, ok := quickAck(raw).(*quickAckConn)
	if !ok {
		t.Fatalf("quickAck returned %T", quickAck(raw))
	}
	defer q.Close()
	srv := <-peer
	defer srv.Close()

	if _, err := srv.Write([]byte("cue")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 3)
	if _, err := io.ReadFull(q, buf); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 5*time.Second, "the unanswered read acknowledged", func() bool { return !q.unacked.Load() })

	if _, err := srv.Write([]byte("cue")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(q, buf); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Write([]byte("ok")); err != nil {
		t.Fatal(err)
	}
	if q.unacked.Load() {
		t.Fatal("a write after the read left it marked unacknowledged")
	}
}
