// Package agentapi is the command line's client of a running agent's HTTP API.
package agentapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// maxAnswer bounds an answer read into memory (a scene list, an export
// page).
const maxAnswer = 8 << 20

// Client sends requests to the agent at Base with Token as a bearer token
// (when set).
type Client struct {
	Base  string
	Token string
	HTTP  *http.Client
}

// New returns a client of the agent at base whose requests end after
// timeout.
func New(base, token string, timeout time.Duration) *Client {
	return &Client{Base: strings.TrimRight(base, "/"), Token: token,
		HTTP: &http.Client{Timeout: timeout, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
}

// Error is a non-2xx answer: its status, the JSON "error" it carried, and
// the body as sent, for refusals that say more.
type Error struct {
	Code int
	Msg  string
	Body []byte
}

func (e *Error) Error() string {
	if e.Msg == "" {
		return fmt.Sprintf("agent answered %d %s", e.Code, http.StatusText(e.Code))
	}
	return fmt.Sprintf("agent answered %d %s: %s", e.Code, http.StatusText(e.Code), e.Msg)
}

// Do sends body (JSON, if not nil) and decodes a JSON answer into out (if
// not nil). A non-2xx answer is an *Error.
func (c *Client) Do(ctx context.Context, method, path string, body []byte, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the agent at %s (is it running? see --http or --agent): %w", c.Base, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(b, &e)
		return &Error{Code: resp.StatusCode, Msg: e.Error, Body: b}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: unexpected answer: %w", method, path, err)
	}
	return nil
}
