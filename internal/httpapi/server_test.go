package httpapi

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func serve(t *testing.T, h http.Handler, l Limits) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(h, l, nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(LimitListener(ln, l.MaxConns))
	}()
	t.Cleanup(func() { srv.Close(); <-done })
	return ln.Addr().String()
}

// closedWithin reads from c until the server closes it, failing the test
// if that takes longer than within.
func closedWithin(t *testing.T, c net.Conn, within time.Duration, what string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(within))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("%s: connection still open after %v", what, within)
	}
}

func TestIdleAndSlowConnectionsClosed(t *testing.T) {
	l := Limits{ReadHeaderTimeout: 300 * time.Millisecond, ReadTimeout: 600 * time.Millisecond, IdleTimeout: 300 * time.Millisecond, MaxConns: 8}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	addr := serve(t, h, l)

	t.Run("idle keep-alive", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("first request: %v %v", resp, err)
		}
		io.Copy(io.Discard, resp.Body)
		closedWithin(t, c, 5*time.Second, "idle keep-alive connection")
	})
	t.Run("headers never finished", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n"); err != nil {
			t.Fatal(err)
		}
		closedWithin(t, c, 5*time.Second, "slow headers")
	})
	t.Run("body trickles", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nab"); err != nil {
			t.Fatal(err)
		}
		closedWithin(t, c, 5*time.Second, "slow body")
	})
}

// Connections beyond the cap wait until one closes.
func TestConnectionCap(t *testing.T) {
	l := Limits{ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 10 * time.Second, MaxConns: 2}
	addr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) }), l)
	var held []net.Conn
	for i := 0; i < 2; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		held = append(held, c)
	}
	// Both slots are taken by silent connections: a third gets no answer.
	third, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	if _, err := io.WriteString(third, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = third.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := third.Read(make([]byte, 1)); err == nil {
		t.Fatal("a connection over the cap was served")
	}
	held[0].Close()
	_ = third.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(third), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("after a slot freed: %v %v", resp, err)
	}
}

type forbidAll struct{}

func (forbidAll) RoleOf(*http.Request) (Role, error) {
	return Public, errors.Join(ErrForbidden, errors.New("cross-site"))
}

func TestSecurityHeadersAndForbidden(t *testing.T) {
	rt := NewRouter(forbidAll{}, nil)
	rt.HandleFunc("GET /api/open", Public, func(w http.ResponseWriter, _ *http.Request) { WriteJSON(w, 200, "ok") })
	rt.HandleFunc("POST /api/closed", Crew, func(w http.ResponseWriter, _ *http.Request) { WriteJSON(w, 200, "ok") })
	addr := serve(t, rt.Handler(), DefaultLimits)
	for _, tc := range []struct {
		method, path string
		code         int
	}{{"GET", "/api/open", 200}, {"POST", "/api/closed", 403}, {"GET", "/api/nothing", 404}} {
		req, _ := http.NewRequest(tc.method, "http://"+addr+tc.path, strings.NewReader(""))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.code {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, resp.StatusCode, tc.code)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s %s: headers %v", tc.method, tc.path, resp.Header)
		}
	}
}
