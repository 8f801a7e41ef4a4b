package agentapi

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestDo(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"error":"sign in"}`))
			return
		}
		switch r.URL.Path {
		case "/ok":
			if r.Header.Get("Content-Type") != "application/json" {
				t.Errorf("content type %q", r.Header.Get("Content-Type"))
			}
			w.Write([]byte(`{"n":3}`))
		case "/refused":
			w.WriteHeader(http.StatusConflict)
			w.Write([]byte(`{"error":"handed over at 12:00 by desk1","by":"desk1"}`))
		default:
			w.Write([]byte(`not json`))
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	c := New(srv.URL+"/", "tok", 5*time.Second)
	var out struct{ N int }
	if err := c.Do(ctx, http.MethodPost, "/ok", []byte(`{}`), &out); err != nil || out.N != 3 {
		t.Fatalf("ok: %v %+v", err, out)
	}
	var ae *Error
	err := c.Do(ctx, http.MethodPost, "/refused", []byte(`{}`), nil)
	if !errors.As(err, &ae) || ae.Code != http.StatusConflict || ae.Msg != "handed over at 12:00 by desk1" || !strings.Contains(string(ae.Body), `"by":"desk1"`) {
		t.Fatalf("refused: %v", err)
	}
	if !strings.Contains(err.Error(), "409 Conflict: handed over") {
		t.Fatalf("message %q", err.Error())
	}
	if err := c.Do(ctx, http.MethodGet, "/other", nil, &out); err == nil || !strings.Contains(err.Error(), "unexpected answer") {
		t.Fatalf("not json: %v", err)
	}
	if err := New(srv.URL, "", time.Second).Do(ctx, http.MethodGet, "/ok", nil, nil); !errors.As(err, &ae) || ae.Code != http.StatusUnauthorized {
		t.Fatalf("no token: %v", err)
	}
	if err := New("http://127.0.0.1:1", "", time.Second).Do(ctx, http.MethodGet, "/", nil, nil); err == nil || !strings.Contains(err.Error(), "cannot reach the agent") {
		t.Fatalf("no agent: %v", err)
	}
}
