package scenecli

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"fieldkit/drivers/cue"
	"fieldkit/internal/httpapi"
	"fieldkit/scenes"
)

type nopTarget struct {
	mu *sync.Mutex
	n  *int
}

func (nopTarget) Name() string           { return "lamp" }
func (nopTarget) Kind() string           { return "test" }
func (nopTarget) Check(cue.Action) error { return nil }
func (t nopTarget) Apply(context.Context, cue.Action) error {
	t.mu.Lock()
	*t.n++
	t.mu.Unlock()
	return nil
}
func (nopTarget) State() any   { return nil }
func (nopTarget) Close() error { return nil }

// tokenAuth accepts one bearer token.
type tokenAuth struct{}

func (tokenAuth) RoleOf(r *http.Request) (httpapi.Role, error) {
	if r.Header.Get("Authorization") != "Bearer s3cret" {
		return 0, errors.New("missing or wrong token")
	}
	return httpapi.Crew, nil
}

func TestCLI(t *testing.T) {
	var mu sync.Mutex
	var applied int
	fsys := fstest.MapFS{"show.yaml": {Data: []byte("name: show\ndescription: the show\nsteps:\n  - {at: 0s, target: lamp, do: \"on\"}\n  - {at: 1h, target: lamp, do: \"off\"}\n")}}
	e, err := scenes.New(scenes.Config{}, scenes.Deps{Targets: map[string]cue.Target{"lamp": nopTarget{&mu, &applied}}, Files: fsys,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = e.Run(ctx) }()
	defer func() { cancel(); <-done }()
	rt := httpapi.NewRouter(tokenAuth{}, nil)
	e.Routes(rt)
	srv := httptest.NewServer(rt.Handler())
	defer srv.Close()

	run := func(token string, args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := RunCLI(context.Background(), args, &out, &errOut, srv.URL, token)
		return out.String() + errOut.String(), err
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		out, err := run("s3cret", "run", "show", `{"by":"cli"}`)
		if err == nil {
			if out != "show: started\n" {
				t.Fatalf("run: %q", out)
			}
			break
		}
		if !strings.Contains(err.Error(), "not running") || time.Now().After(deadline) {
			t.Fatalf("run: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if out, err := run("s3cret", "list"); err != nil || !strings.Contains(out, "show  running 1/2  2      1h0m0s  ignore  the show") {
		t.Fatalf("list: %v\n%s", err, out)
	}
	if out, err := run("s3cret", "show", "show"); err != nil || !strings.Contains(out, "last run 1 by http") {
		t.Fatalf("show: %v\n%s", err, out)
	}
	if _, err := run("s3cret", "run", "show"); err == nil || !strings.Contains(err.Error(), "policy is ignore") {
		t.Fatalf("second run: %v", err)
	}
	if out, err := run("s3cret", "cancel", "show"); err != nil || out != "show: cancelled\n" {
		t.Fatalf("cancel: %v %q", err, out)
	}
	if _, err := run("s3cret", "run", "nope"); err == nil || !strings.Contains(err.Error(), `scene "nope": no such scene`) {
		t.Fatalf("unknown: %v", err)
	}
	if _, err := run("wrong", "list"); err == nil || !strings.Contains(err.Error(), "wrong token") {
		t.Fatalf("bad token: %v", err)
	}
	if _, err := run("s3cret", "run", "show", "not json"); err == nil || !strings.Contains(err.Error(), "must be JSON") {
		t.Fatalf("bad payload: %v", err)
	}
	if out, err := run("s3cret", "dance"); !errors.Is(err, ErrUsage) || !strings.Contains(out, "usage:") {
		t.Fatalf("usage: %v %q", err, out)
	}
	if err := RunCLI(context.Background(), []string{"list"}, io.Discard, io.Discard, "http://127.0.0.1:1", ""); err == nil || !strings.Contains(err.Error(), "cannot reach the agent") {
		t.Fatalf("no agent: %v", err)
	}
}
