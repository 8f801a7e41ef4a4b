//go:build !linux

package mqttc

import "net"

// quickAckConn is Linux only (see quickack_linux.go).
type quickAckConn struct{ net.Conn }

// quickAck is Linux only; elsewhere the connection is used as it is.
func quickAck(c net.Conn) net.Conn { return c }
