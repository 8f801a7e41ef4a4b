package mqttc

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// openConn dials the broker for paho (tcp:// and ssl:// URLs) on a
// connection that acknowledges what it reads at once (quickAck). A cue
// the agent only acts on (a GPIO pin) gets no answer from it; the kernel
// would hold its ACK for up to 40 ms, and a broker with Nagle's
// algorithm on (Mosquitto's default) holds the next message to the agent,
// the next cue, until that ACK arrives.
func openConn(uri *url.URL, o paho.ClientOptions) (net.Conn, error) {
	timeout := o.ConnectTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	d := &net.Dialer{Timeout: timeout}
	switch uri.Scheme {
	case "tcp", "mqtt":
		c, err := d.Dial("tcp", uri.Host)
		if err != nil {
			return nil, err
		}
		q := quickAck(c)
		return bufferedConn{q, bufio.NewReaderSize(q, readBuffer)}, nil
	case "ssl", "tls", "mqtts", "mqtt+ssl", "tcps":
		c, err := d.Dial("tcp", uri.Host)
		if err != nil {
			return nil, err
		}
		cfg := &tls.Config{}
		if o.TLSConfig != nil {
			cfg = o.TLSConfig.Clone()
		}
		if cfg.ServerName == "" {
			cfg.ServerName = uri.Hostname()
		}
		tc := tls.Client(quickAck(c), cfg)
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		if err := tc.HandshakeContext(ctx); err != nil {
			c.Close()
			return nil, err
		}
		return tc, nil
	}
	return nil, fmt.Errorf("broker URL scheme %q: expected tcp:// or ssl://", uri.Scheme)
}

// readBuffer holds a few MQTT packets: paho reads a packet's header a
// byte at a time, each a system call on a bare socket; buffered, a cue's
// packet is one read.
const readBuffer = 4 << 10

// bufferedConn reads through a buffer and writes straight to the socket
// (TLS buffers its records itself).
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c bufferedConn) Read(b []byte) (int, error) { return c.r.Read(b) }
