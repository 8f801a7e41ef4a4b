package httpapi

import (
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// Limits bound what a client can hold on the agent: a venue network has
// careless and hostile clients, and the box has little memory.
type Limits struct {
	// ReadHeaderTimeout closes a connection that has not sent its
	// request headers in time (slowloris).
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, body included. The
	// live event stream (Accept: text/event-stream) is exempt once it is
	// being answered.
	ReadTimeout time.Duration
	// IdleTimeout closes a keep-alive connection with no request.
	IdleTimeout time.Duration
	// MaxConns caps open connections; further ones wait in the kernel's
	// backlog until one closes.
	MaxConns int
}

// DefaultLimits are the agent's.
var DefaultLimits = Limits{ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second, IdleTimeout: 60 * time.Second, MaxConns: 128}

// NewServer returns a server for h with the limits set; serve it on
// LimitListener(ln, l.MaxConns).
func NewServer(h http.Handler, l Limits, log *slog.Logger) *http.Server {
	if log == nil {
		log = slog.Default()
	}
	if l.ReadTimeout > 0 {
		h = streamsExempt(h)
	}
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: l.ReadHeaderTimeout,
		ReadTimeout:       l.ReadTimeout,
		IdleTimeout:       l.IdleTimeout,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// streamsExempt lifts the read deadline of an event stream, which lasts
// as long as the page is open: the server cancels a request whose
// connection reaches its read deadline.
func streamsExempt(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.Header.Get("Accept") == "text/event-stream" {
			_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
		}
		h.ServeHTTP(w, r)
	})
}

// LimitListener accepts at most n connections at once (n <= 0: no cap).
func LimitListener(ln net.Listener, n int) net.Listener {
	if n <= 0 {
		return ln
	}
	return &limitListener{Listener: ln, sem: make(chan struct{}, n), done: make(chan struct{})}
}

type limitListener struct {
	net.Listener
	sem       chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.sem <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.sem }}, nil
}

func (l *limitListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
