// Package nut is a small client for the Network UPS Tools server (upsd)
// protocol over TCP (port 3493, RFC 9271): optional USERNAME/PASSWORD,
// LIST VAR and GET VAR, enough to read a UPS's battery.charge,
// battery.runtime and ups.status.
package nut

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"
)

// DefaultPort is upsd's registered port.
const DefaultPort = 3493

// Opts configure a client.
type Opts struct {
	Username, Password string
	// Timeout bounds each request (default 5 s).
	Timeout time.Duration
}

// Sentinel errors.
var (
	// ErrProtocol is a reply that does not follow the protocol.
	ErrProtocol = errors.New("nut: protocol error")
	// ErrServer wraps an "ERR <code>" reply; use errors.As with *ServerError.
	ErrServer = errors.New("nut: server error")
)

// ServerError is an "ERR <code> [extra]" reply, such as UNKNOWN-UPS,
// VAR-NOT-SUPPORTED or ACCESS-DENIED.
type ServerError struct {
	Code  string
	Extra string
}

func (e *ServerError) Error() string {
	if e.Extra != "" {
		return fmt.Sprintf("nut: server said ERR %s %s", e.Code, e.Extra)
	}
	return "nut: server said ERR " + e.Code
}

func (e *ServerError) Unwrap() error { return ErrServer }

// maxLine bounds a reply line; upsd's own limit is 512 bytes, values
// included, so a longer line is a broken or hostile server.
const maxLine = 4096

// Client is one connection to upsd. Requests are serialised.
type Client struct {
	mu   sync.Mutex
	conn net.Conn
	r    *bufio.Reader
	o    Opts
	addr string
}

// Dial connects to addr ("host:3493") and logs in when a username is set.
func Dial(ctx context.Context, addr string, o Opts) (*Client, error) {
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Second
	}
	var d net.Dialer
	dctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	conn, err := d.DialContext(dctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("nut %s: %w", addr, err)
	}
	c := &Client{conn: conn, r: bufio.NewReaderSize(conn, 1024), o: o, addr: addr}
	if o.Username != "" {
		if err := c.command(ctx, "USERNAME "+quote(o.Username)); err != nil {
			conn.Close()
			return nil, fmt.Errorf("nut %s: username: %w", addr, err)
		}
		if err := c.command(ctx, "PASSWORD "+quote(o.Password)); err != nil {
			conn.Close()
			return nil, fmt.Errorf("nut %s: password: %w", addr, err)
		}
	}
	return c, nil
}

// Close says LOGOUT and closes the connection.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	_ = c.conn.SetDeadline(time.Now().Add(time.Second))
	_, _ = c.conn.Write([]byte("LOGOUT\n"))
	return c.conn.Close()
}

// Get returns one variable: GET VAR <ups> <name>.
func (c *Client) Get(ctx context.Context, ups, name string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.send(ctx, fmt.Sprintf("GET VAR %s %s", quote(ups), quote(name))); err != nil {
		return "", err
	}
	line, err := c.readLine()
	if err != nil {
		return "", err
	}
	f, err := ParseLine(line)
	if err != nil {
		return "", err
	}
	if err := errReply(f); err != nil {
		return "", err
	}
	if len(f) != 4 || f[0] != "VAR" || f[1] != ups || f[2] != name {
		return "", fmt.Errorf("%w: GET VAR answered %q", ErrProtocol, line)
	}
	return f[3], nil
}

// Vars returns every variable of ups: LIST VAR <ups>.
func (c *Client) Vars(ctx context.Context, ups string) (map[string]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.send(ctx, "LIST VAR "+quote(ups)); err != nil {
		return nil, err
	}
	line, err := c.readLine()
	if err != nil {
		return nil, err
	}
	f, err := ParseLine(line)
	if err != nil {
		return nil, err
	}
	if err := errReply(f); err != nil {
		return nil, err
	}
	if len(f) != 4 || f[0] != "BEGIN" || f[1] != "LIST" || f[2] != "VAR" || f[3] != ups {
		return nil, fmt.Errorf("%w: LIST VAR answered %q", ErrProtocol, line)
	}
	vars := map[string]string{}
	for {
		line, err := c.readLine()
		if err != nil {
			return nil, err
		}
		f, err := ParseLine(line)
		if err != nil {
			return nil, err
		}
		switch {
		case len(f) == 4 && f[0] == "END" && f[1] == "LIST" && f[2] == "VAR" && f[3] == ups:
			return vars, nil
		case len(f) == 4 && f[0] == "VAR" && f[1] == ups:
			vars[f[2]] = f[3]
		default:
			return nil, fmt.Errorf("%w: in LIST VAR: %q", ErrProtocol, line)
		}
		if len(vars) > 10000 {
			return nil, fmt.Errorf("%w: LIST VAR never ends", ErrProtocol)
		}
	}
}

// command sends a line expecting "OK".
func (c *Client) command(ctx context.Context, line string) error {
	if err := c.send(ctx, line); err != nil {
		return err
	}
	reply, err := c.readLine()
	if err != nil {
		return err
	}
	f, err := ParseLine(reply)
	if err != nil {
		return err
	}
	if err := errReply(f); err != nil {
		return err
	}
	if len(f) == 0 || f[0] != "OK" {
		return fmt.Errorf("%w: expected OK, got %q", ErrProtocol, reply)
	}
	return nil
}

func (c *Client) send(ctx context.Context, line string) error {
	if strings.ContainsAny(line, "\r\n") {
		return fmt.Errorf("nut %s: a name or password with a line break cannot be sent", c.addr)
	}
	dl := time.Now().Add(c.o.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(dl) {
		dl = d
	}
	if err := c.conn.SetDeadline(dl); err != nil {
		return err
	}
	if _, err := c.conn.Write([]byte(line + "\n")); err != nil {
		return fmt.Errorf("nut %s: %w", c.addr, err)
	}
	return nil
}

func (c *Client) readLine() (string, error) {
	var b []byte
	for {
		chunk, isPrefix, err := c.r.ReadLine()
		if err != nil {
			return "", fmt.Errorf("nut %s: %w", c.addr, err)
		}
		b = append(b, chunk...)
		if len(b) > maxLine {
			return "", fmt.Errorf("%w: reply line longer than %d bytes", ErrProtocol, maxLine)
		}
		if !isPrefix {
			return string(b), nil
		}
	}
}

func errReply(f []string) error {
	if len(f) >= 2 && f[0] == "ERR" {
		return &ServerError{Code: f[1], Extra: strings.Join(f[2:], " ")}
	}
	if len(f) == 1 && f[0] == "ERR" {
		return fmt.Errorf("%w: ERR without a code", ErrProtocol)
	}
	return nil
}

// ParseLine splits one reply line into words: spaces separate words,
// double quotes group them, and a backslash escapes the next character
// inside quotes (RFC 9271 section 4.1).
func ParseLine(line string) ([]string, error) {
	var out []string
	var cur strings.Builder
	inWord, inQuote := false, false
	for i := 0; i < len(line); i++ {
		ch := line[i]
		switch {
		case inQuote && ch == '\\':
			if i+1 >= len(line) {
				return nil, fmt.Errorf("%w: line ends in an escape: %q", ErrProtocol, line)
			}
			i++
			cur.WriteByte(line[i])
		case inQuote && ch == '"':
			inQuote = false
			out = append(out, cur.String())
			cur.Reset()
			inWord = false
			if i+1 < len(line) && line[i+1] != ' ' {
				return nil, fmt.Errorf("%w: text right after a closing quote: %q", ErrProtocol, line)
			}
		case inQuote:
			cur.WriteByte(ch)
		case ch == '"':
			if inWord {
				return nil, fmt.Errorf("%w: quote inside a word: %q", ErrProtocol, line)
			}
			inQuote = true
		case ch == ' ' || ch == '\t' || ch == '\r':
			if inWord {
				out = append(out, cur.String())
				cur.Reset()
				inWord = false
			}
		case ch < 0x20 || ch == 0x7f:
			return nil, fmt.Errorf("%w: control byte %#x in %q", ErrProtocol, ch, line)
		default:
			inWord = true
			cur.WriteByte(ch)
		}
	}
	if inQuote {
		return nil, fmt.Errorf("%w: unterminated quote: %q", ErrProtocol, line)
	}
	if inWord {
		out = append(out, cur.String())
	}
	return out, nil
}

// quote makes s one word for the server: bare when it is a plain word,
// else double-quoted with \" and \\ escaped.
func quote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\"\\") {
		return s
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(s) + `"`
}
