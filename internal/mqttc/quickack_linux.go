package mqttc

import (
	"net"
	"sync/atomic"
	"syscall"
	"time"
)

// ackDelay is how long a read may stay unacknowledged before the
// connection acknowledges it on its own. An MQTT exchange usually answers
// within it (a relayed cue, a PUBACK), and the answer carries the ACK; a
// message the agent only acts on (a GPIO cue) gets a bare ACK when it
// runs out, instead of the kernel's delayed ACK of up to 40 ms.
const ackDelay = 200 * time.Microsecond

// quickAckConn makes sure that what the agent reads is acknowledged
// within ackDelay. A broker with Nagle's algorithm on (Mosquitto's
// default) holds its next small message to the agent, the next cue, until
// the last one is acknowledged, and Linux delays an ACK with nothing to
// ride on by up to 40 ms.
//
// The ACK is pushed by a timer, not right after the read: setting
// TCP_QUICKACK sends the pending ACK inside the system call, a loopback
// round of kernel work that would sit between a cue's arrival and its
// dispatch; and when the agent answers in time, nothing is sent at all.
type quickAckConn struct {
	net.Conn
	raw     syscall.RawConn
	unacked atomic.Bool
	timer   *time.Timer
}

func quickAck(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	q := &quickAckConn{Conn: c, raw: raw}
	q.timer = time.AfterFunc(time.Hour, q.ack)
	q.timer.Stop()
	return q
}

func (c *quickAckConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.unacked.Store(true)
		c.timer.Reset(ackDelay)
	}
	return n, err
}

// Write carries the ACK of everything read before it, so it stops the
// timer: a timer that fires with nothing to do still wakes a thread,
// which a box with two cores gives to the next cue. Both happen before
// the system call: a read racing with it either re-arms the timer after
// the stop, or was read before the write, which then carries its ACK.
func (c *quickAckConn) Write(b []byte) (int, error) {
	c.unacked.Store(false)
	c.timer.Stop()
	return c.Conn.Write(b)
}

// ack sends the pending ACK now, unless a write has carried it.
func (c *quickAckConn) ack() {
	if !c.unacked.Swap(false) {
		return
	}
	_ = c.raw.Control(func(fd uintptr) {
		_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
	})
}

func (c *quickAckConn) Close() error {
	c.timer.Stop()
	return c.Conn.Close()
}
