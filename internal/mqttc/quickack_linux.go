package mqttc

import (
	"net"
	"syscall"
)

// quickAckConn re-arms TCP_QUICKACK after every read: Linux leaves quick
// ACK mode on its own, so one setsockopt at connect is not enough.
type quickAckConn struct {
	net.Conn
	raw syscall.RawConn
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
	return &quickAckConn{Conn: c, raw: raw}
}

func (c *quickAckConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		_ = c.raw.Control(func(fd uintptr) {
			_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
		})
	}
	return n, err
}
