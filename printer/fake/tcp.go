package fake

import (
	"errors"
	"net"
	"sync"
)

// tcpPort is a raw TCP (port 9100 style) listener serving one connection
// at a time, as network printers do; others wait in the backlog.
type tcpPort struct {
	ln   net.Listener
	stop chan struct{}
	done chan struct{}
	mu   sync.Mutex
	conn net.Conn
}

// ListenTCP listens on addr ("127.0.0.1:0" when empty) and returns the
// address in use; Plug listens on the same address again.
func (p *Printer) ListenTCP(addr string) (string, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return "", ErrClosed
	}
	if p.tcpAddr != "" {
		p.mu.Unlock()
		return "", ErrTransport
	}
	p.mu.Unlock()
	return p.listenTCP(addr)
}

// TCPAddr is the TCP address, "" before ListenTCP.
func (p *Printer) TCPAddr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.tcpAddr
}

func (p *Printer) listenTCP(addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	tp := &tcpPort{ln: ln, stop: make(chan struct{}), done: make(chan struct{})}
	p.mu.Lock()
	if p.closed || !p.plugged {
		p.mu.Unlock()
		ln.Close()
		return "", ErrClosed
	}
	p.tcp, p.tcpAddr = tp, ln.Addr().String()
	p.wg.Add(1)
	p.mu.Unlock()
	go func() {
		defer p.wg.Done()
		defer close(tp.done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tp.mu.Lock()
			select {
			case <-tp.stop:
				tp.mu.Unlock()
				c.Close()
				return
			default:
			}
			tp.conn = c
			tp.mu.Unlock()
			p.serve(c, tp.stop)
			c.Close()
		}
	}()
	return tp.ln.Addr().String(), nil
}

func (tp *tcpPort) close() error {
	tp.mu.Lock()
	close(tp.stop)
	if tp.conn != nil {
		tp.conn.Close()
	}
	tp.mu.Unlock()
	err := tp.ln.Close()
	<-tp.done
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}
