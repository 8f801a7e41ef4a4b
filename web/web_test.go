package web

import (
	"bufio"
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"fieldkit/internal/auth"
	"fieldkit/internal/bus"
	"fieldkit/internal/clock"
	"fieldkit/internal/httpapi"
)

type fixture struct {
	srv   *httptest.Server
	auth  *auth.Auth
	bus   *bus.Bus
	count *atomic.Int64
	web   *Server
}

func newFixture(t *testing.T, required bool) *fixture {
	t.Helper()
	store, _, err := auth.OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	au := auth.New(store, auth.Options{Required: required})
	rt := httpapi.NewRouter(au, nil)
	b := bus.New(nil)
	f := &fixture{auth: au, bus: b, count: new(atomic.Int64)}
	rt.HandleFunc("GET /api/status", httpapi.Crew, func(w http.ResponseWriter, _ *http.Request) {
		httpapi.WriteJSON(w, 200, map[string]any{"box": "t1", "n": f.count.Load()})
	})
	au.Routes(rt)
	ws, err := New(Deps{Auth: au, Handler: rt.Handler, Bus: b, Box: "t1", Clock: clock.Real(), Tick: time.Hour,
		Sources: []Source{{Name: "status", Path: "/api/status"}, {Name: "scenes", Path: "/api/scenes"}}})
	if err != nil {
		t.Fatal(err)
	}
	ws.Routes(rt)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ws.Run(ctx) }()
	f.srv = httptest.NewServer(rt.Handler())
	f.web = ws
	t.Cleanup(func() {
		cancel()
		<-done
		f.srv.Close()
	})
	return f
}

func (f *fixture) token(t *testing.T, r httpapi.Role) string {
	v, err := f.auth.Store().Token(r)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func client(t *testing.T) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func postForm(t *testing.T, c *http.Client, u string, v url.Values, origin string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("POST", u, strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func body(t *testing.T, r *http.Response) string {
	t.Helper()
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return string(b)
}

func TestLoginFlow(t *testing.T) {
	f := newFixture(t, true)
	c := client(t)
	resp, _ := c.Get(f.srv.URL + "/")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
		t.Fatalf("page without session: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp.Body.Close()
	resp = postForm(t, c, f.srv.URL+"/login", url.Values{"token": {"nope"}, "name": {"Ana"}}, f.srv.URL)
	if b := body(t, resp); resp.StatusCode != 401 || !strings.Contains(b, "not the crew or admin token") {
		t.Fatalf("wrong token: %d %s", resp.StatusCode, b)
	}
	resp = postForm(t, c, f.srv.URL+"/login", url.Values{"token": {f.token(t, httpapi.Crew)}, "name": {"Ana"}}, "http://evil.example")
	if resp.StatusCode != 403 {
		t.Fatalf("cross-site login: %d", resp.StatusCode)
	}
	resp.Body.Close()
	resp = postForm(t, c, f.srv.URL+"/login", url.Values{"token": {f.token(t, httpapi.Crew)}, "name": {"Ana"}}, f.srv.URL)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	sc := resp.Header.Get("Set-Cookie")
	if !strings.Contains(sc, "HttpOnly") || !strings.Contains(sc, "SameSite=Strict") {
		t.Fatalf("cookie %s", sc)
	}
	resp.Body.Close()
	resp, _ = c.Get(f.srv.URL + "/")
	if b := body(t, resp); resp.StatusCode != 200 || !strings.Contains(b, "<title>t1") || strings.Contains(b, "open-banner") {
		t.Fatalf("page: %d %s", resp.StatusCode, b)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Fatalf("CSP %q", csp)
	}
	resp, _ = c.Get(f.srv.URL + "/api/whoami")
	if b := body(t, resp); !strings.Contains(b, `"name": "Ana"`) || !strings.Contains(b, `"role": "crew"`) {
		t.Fatalf("whoami %s", b)
	}
	// Logout from another site is refused; from the page it works.
	resp = postForm(t, c, f.srv.URL+"/logout", nil, "http://evil.example")
	if resp.StatusCode != 403 {
		t.Fatalf("cross-site logout: %d", resp.StatusCode)
	}
	resp.Body.Close()
	resp = postForm(t, c, f.srv.URL+"/logout", nil, f.srv.URL)
	resp.Body.Close()
	resp, _ = c.Get(f.srv.URL + "/api/whoami")
	if resp.StatusCode != 401 {
		t.Fatalf("after logout: %d", resp.StatusCode)
	}
	resp.Body.Close()
}

func TestOpenBanner(t *testing.T) {
	f := newFixture(t, false)
	resp, err := http.Get(f.srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	if b := body(t, resp); resp.StatusCode != 200 || !strings.Contains(b, `id="open-banner"`) || strings.Contains(b, "Log out") {
		t.Fatalf("open page: %d %s", resp.StatusCode, b)
	}
}

func TestAssetsGzipAndCache(t *testing.T) {
	f := newFixture(t, true)
	tr := &http.Transport{DisableCompression: true}
	c := &http.Client{Transport: tr}
	req, _ := http.NewRequest("GET", f.srv.URL+"/assets/app.js", nil)
	req.Header.Set("Accept-Encoding", "gzip, br")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Header.Get("Content-Encoding") != "gzip" || resp.Header.Get("ETag") == "" {
		t.Fatalf("headers %v", resp.Header)
	}
	zr, err := gzip.NewReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	js, _ := io.ReadAll(zr)
	resp.Body.Close()
	if !strings.Contains(string(js), "EventSource") {
		t.Fatal("app.js not served")
	}
	req.Header.Set("If-None-Match", resp.Header.Get("ETag"))
	resp, _ = c.Do(req)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotModified {
		t.Fatalf("revalidation: %d", resp.StatusCode)
	}
	resp, _ = c.Get(f.srv.URL + "/assets/nope.js")
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("missing asset: %d", resp.StatusCode)
	}
}

type sse struct {
	name, data string
}

func readEvents(t *testing.T, r io.Reader) <-chan sse {
	ch := make(chan sse, 64)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(r)
		var ev sse
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				ev.name = line[7:]
			case strings.HasPrefix(line, "data: "):
				ev.data = line[6:]
			case line == "" && ev.name != "":
				ch <- ev
				ev = sse{}
			}
		}
	}()
	return ch
}

func await(t *testing.T, ch <-chan sse, what string, ok func(sse) bool) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case ev, open := <-ch:
			if !open {
				t.Fatalf("stream ended waiting for %s", what)
			}
			if ok(ev) {
				return
			}
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// The stream starts with a snapshot (absent parts as null) and pushes a
// change after a bus event.
func TestEventStream(t *testing.T) {
	f := newFixture(t, true)
	req, _ := http.NewRequest("GET", f.srv.URL+"/api/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("stream without a token: %d", resp.StatusCode)
	}
	req.Header.Set("Authorization", "Bearer "+f.token(t, httpapi.Crew))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	evs := readEvents(t, resp.Body)
	await(t, evs, "status snapshot", func(e sse) bool { return e.name == "status" && e.data == `{"box":"t1","n":0}` })
	await(t, evs, "absent scenes", func(e sse) bool { return e.name == "scenes" && e.data == "null" })
	f.count.Store(7)
	f.bus.Publish("scene/x/state", []byte(`{}`))
	await(t, evs, "status change", func(e sse) bool { return e.name == "status" && e.data == `{"box":"t1","n":7}` })
}

// The stream says "alive" every heartbeat, so a page can tell a silent
// agent from a quiet one.
func TestEventStreamHeartbeat(t *testing.T) {
	f := newFixture(t, false)
	resp, err := http.Get(f.srv.URL + "/api/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	evs := readEvents(t, resp.Body)
	start := time.Now()
	for i := 0; i < 2; i++ {
		await(t, evs, "alive", func(e sse) bool {
			ms, err := strconv.ParseInt(e.data, 10, 64)
			return e.name == "alive" && err == nil && ms > start.Add(-time.Minute).UnixMilli()
		})
	}
}

// The page runs under style-src 'self' and script-src 'self': nothing in
// it may be inline, or the browser blocks it (the battery bars were all
// full width that way).
func TestPageHasNothingInline(t *testing.T) {
	for _, name := range []string{"assets/index.html.tmpl", "assets/login.html.tmpl"} {
		b, err := assetFS.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, bad := range []*regexp.Regexp{
			regexp.MustCompile(`(?i)\sstyle\s*=`), regexp.MustCompile(`(?i)<style`),
			regexp.MustCompile(`(?i)\son[a-z]+\s*=`),
			regexp.MustCompile(`(?i)javascript:`),
		} {
			if m := bad.Find(b); m != nil {
				t.Errorf("%s: inline %q", name, m)
			}
		}
		for _, tag := range regexp.MustCompile(`(?i)<script[^>]*>`).FindAll(b, -1) {
			if !strings.Contains(string(tag), "src=") {
				t.Errorf("%s: inline script %q", name, tag)
			}
		}
	}
	js, err := assetFS.ReadFile("assets/app.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{`"style"`, `.style`, `cssText`, `innerHTML`, `eval(`, `new Function`} {
		if strings.Contains(string(js), bad) {
			t.Errorf("app.js uses %s", bad)
		}
	}
	// el("span", {style: "width:40%"}) sets a style attribute.
	if m := regexp.MustCompile(`[{,]\s*["']?style["']?\s*:`).Find(js); m != nil {
		t.Errorf("app.js sets a style attribute: %q", m)
	}
}
