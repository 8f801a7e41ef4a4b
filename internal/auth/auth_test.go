package auth

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fieldkit/internal/clock"
	"fieldkit/internal/httpapi"
)

func newAuth(t *testing.T, required bool) (*Auth, *clock.Fake) {
	t.Helper()
	s, created, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if len(created) != 2 {
		t.Fatalf("created %v, want crew and admin", created)
	}
	fc := clock.NewFake(time.Date(2026, 5, 1, 18, 0, 0, 0, time.UTC))
	return New(s, Options{Required: required, Clock: fc}), fc
}

func tok(t *testing.T, a *Auth, r httpapi.Role) string {
	t.Helper()
	v, err := a.Store().Token(r)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestTokenFiles(t *testing.T) {
	dir := t.TempDir()
	s, created, err := OpenStore(dir)
	if err != nil || len(created) != 2 {
		t.Fatal(created, err)
	}
	crew, _ := s.Token(httpapi.Crew)
	admin, _ := s.Token(httpapi.Admin)
	if crew == admin || len(crew) < 30 {
		t.Fatalf("tokens %q %q", crew, admin)
	}
	for _, r := range []httpapi.Role{httpapi.Crew, httpapi.Admin} {
		fi, err := os.Stat(s.Path(r))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s token file: %v %v", r, fi.Mode(), err)
		}
	}
	// Reopened: same tokens, none created.
	s2, created, err := OpenStore(dir)
	if err != nil || len(created) != 0 {
		t.Fatal(created, err)
	}
	if c2, _ := s2.Token(httpapi.Crew); c2 != crew {
		t.Fatal("crew token changed on reopen")
	}
	// Rotated by another process (the CLI): the first store sees it.
	nt, err := s2.Rotate(httpapi.Crew)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Match(crew); ok {
		t.Fatal("old crew token still accepted after rotation")
	}
	if r, ok := s.Match(nt); !ok || r != httpapi.Crew {
		t.Fatal("new crew token not accepted")
	}
	entries, _ := os.ReadDir(filepath.Join(dir, TokenDir))
	if len(entries) != 2 {
		t.Fatalf("token dir holds %d files (temp files left?)", len(entries))
	}
}

func req(method, path string, hdr ...string) *http.Request {
	r := httptest.NewRequest(method, "http://127.0.0.1:8080"+path, nil)
	r.RemoteAddr = "192.0.2.7:5555"
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	return r
}

func TestRoleOf(t *testing.T) {
	a, _ := newAuth(t, true)
	crew, admin := tok(t, a, httpapi.Crew), tok(t, a, httpapi.Admin)
	open, _ := newAuth(t, false)
	cases := []struct {
		name string
		a    *Auth
		r    *http.Request
		role httpapi.Role
		err  error
	}{
		{"no credentials", a, req("GET", "/api/status"), httpapi.Public, ErrNoCredentials},
		{"crew bearer", a, req("GET", "/api/status", "Authorization", "Bearer "+crew), httpapi.Crew, nil},
		{"admin bearer", a, req("POST", "/api/x", "Authorization", "bearer "+admin), httpapi.Admin, nil},
		{"wrong bearer", a, req("GET", "/api/status", "Authorization", "Bearer "+crew+"x"), httpapi.Public, ErrBadToken},
		{"basic scheme", a, req("GET", "/api/status", "Authorization", "Basic Zm9v"), httpapi.Public, nil},
		{"forged cookie", a, req("GET", "/", "Cookie", CookieName+"=eyJyIjoiYWRtaW4iLCJlIjo5OTk5OTk5OTk5fQ.AAAA"), httpapi.Public, errSession},
		{"cross-site post", a, req("POST", "/api/x", "Authorization", "Bearer "+admin, "Origin", "http://evil.example"), httpapi.Public, ErrCrossSite},
		{"sec-fetch cross-site", a, req("POST", "/api/x", "Authorization", "Bearer "+admin, "Sec-Fetch-Site", "cross-site"), httpapi.Public, ErrCrossSite},
		{"same-origin post", a, req("POST", "/api/x", "Authorization", "Bearer "+admin, "Origin", "http://127.0.0.1:8080", "Sec-Fetch-Site", "same-origin"), httpapi.Admin, nil},
		{"cross-site get is a read", a, req("GET", "/api/status", "Authorization", "Bearer "+crew, "Sec-Fetch-Site", "cross-site"), httpapi.Crew, nil},
		{"open demo", open, req("POST", "/api/x"), httpapi.Admin, nil},
		{"open demo cross-site", open, req("POST", "/api/x", "Origin", "http://evil.example"), httpapi.Public, ErrCrossSite},
		{"open demo rebinding", open, func() *http.Request { r := req("GET", "/api/status"); r.Host = "evil.example:8080"; return r }(), httpapi.Public, ErrHostName},
		{"open demo localhost", open, func() *http.Request { r := req("GET", "/api/status"); r.Host = "localhost:8080"; return r }(), httpapi.Admin, nil},
		{"internal", a, req("GET", "/api/status").WithContext(WithRole(t.Context(), httpapi.Crew)), httpapi.Crew, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			role, err := tc.a.RoleOf(tc.r)
			if role != tc.role {
				t.Errorf("role %v, want %v (err %v)", role, tc.role, err)
			}
			if tc.err != nil && !errors.Is(err, tc.err) {
				t.Errorf("err %v, want %v", err, tc.err)
			}
			if tc.err == nil && tc.role == httpapi.Public && err == nil {
				t.Errorf("public without an error")
			}
			if tc.err == nil && tc.role != httpapi.Public && err != nil {
				t.Errorf("unexpected error %v", err)
			}
		})
	}
}

func loginCookie(t *testing.T, a *Auth, token, name string) (*http.Cookie, error) {
	t.Helper()
	w := httptest.NewRecorder()
	r := req("POST", "/login", "Origin", "http://127.0.0.1:8080")
	if _, err := a.Login(w, r, token, name); err != nil {
		return nil, err
	}
	cs := w.Result().Cookies()
	if len(cs) != 1 {
		t.Fatalf("cookies %v", cs)
	}
	return cs[0], nil
}

func TestLoginSession(t *testing.T) {
	a, fc := newAuth(t, true)
	c, err := loginCookie(t, a, tok(t, a, httpapi.Crew), " Ana ")
	if err != nil {
		t.Fatal(err)
	}
	if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || strings.Contains(c.Value, tok(t, a, httpapi.Crew)) {
		t.Fatalf("cookie %+v", c)
	}
	r := req("GET", "/api/status")
	r.AddCookie(c)
	if role, err := a.RoleOf(r); role != httpapi.Crew || err != nil {
		t.Fatalf("session role %v %v", role, err)
	}
	if a.Who(r) != "Ana" {
		t.Fatalf("who %q", a.Who(r))
	}
	// A crew cookie edited to say admin is refused.
	p, mac, _ := strings.Cut(c.Value, ".")
	_ = p
	forged := &http.Cookie{Name: CookieName, Value: "eyJyIjoiYWRtaW4iLCJuIjoiQW5hIiwiZSI6OTk5OTk5OTk5OX0." + mac}
	r2 := req("GET", "/api/status")
	r2.AddCookie(forged)
	if _, err := a.RoleOf(r2); err == nil {
		t.Fatal("forged admin cookie accepted")
	}
	// Expiry.
	fc.Advance(13 * time.Hour)
	if _, err := a.RoleOf(r); !errors.Is(err, errSession) {
		t.Fatalf("expired session: %v", err)
	}
	fc.Advance(-13 * time.Hour)
	// Rotating the crew token ends crew sessions.
	if _, err := a.Store().Rotate(httpapi.Crew); err != nil {
		t.Fatal(err)
	}
	if _, err := a.RoleOf(r); err == nil {
		t.Fatal("session survived token rotation")
	}
}

func TestLoginRateLimit(t *testing.T) {
	a, fc := newAuth(t, true)
	good := tok(t, a, httpapi.Admin)
	for i := 0; i < 5; i++ {
		if _, err := loginCookie(t, a, "guess", ""); !errors.Is(err, ErrBadToken) {
			t.Fatalf("try %d: %v", i, err)
		}
	}
	// Sixth failure locks the address out for 1 s, then 2 s, ...
	if _, err := loginCookie(t, a, "guess", ""); !errors.Is(err, ErrBadToken) {
		t.Fatal(err)
	}
	var rl *RateLimitedError
	if _, err := loginCookie(t, a, good, ""); !errors.As(err, &rl) || rl.Wait != time.Second {
		t.Fatalf("locked out: %v", err)
	}
	fc.Advance(time.Second)
	loginCookie(t, a, "guess", "")
	if _, err := loginCookie(t, a, good, ""); !errors.As(err, &rl) || rl.Wait != 2*time.Second {
		t.Fatalf("second lock-out: %v", err)
	}
	// Another address is not affected.
	w := httptest.NewRecorder()
	r := req("POST", "/login")
	r.RemoteAddr = "192.0.2.8:1"
	if _, err := a.Login(w, r, good, ""); err != nil {
		t.Fatalf("other IP: %v", err)
	}
	fc.Advance(2 * time.Second)
	if _, err := loginCookie(t, a, good, ""); err != nil {
		t.Fatalf("after the wait: %v", err)
	}
	// A success clears the record.
	if d := a.Limiter().Wait("192.0.2.7"); d != 0 {
		t.Fatalf("wait %v after success", d)
	}
}

func TestLimiterCap(t *testing.T) {
	l := NewLimiter(clock.NewFake(time.Unix(0, 0)))
	var d time.Duration
	for i := 0; i < 40; i++ {
		d = l.Fail("a")
	}
	if d != l.Max {
		t.Fatalf("lock-out %v, want the cap %v", d, l.Max)
	}
	for i := 0; i < maxTracked+10; i++ {
		l.Fail(string(rune(i + 1000)))
	}
	if len(l.ips) > maxTracked {
		t.Fatalf("%d entries tracked", len(l.ips))
	}
}

func TestRoutes(t *testing.T) {
	a, _ := newAuth(t, true)
	rt := httpapi.NewRouter(a, nil)
	a.Routes(rt)
	h := rt.Handler()
	crew, admin := tok(t, a, httpapi.Crew), tok(t, a, httpapi.Admin)
	do := func(method, path, token string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req(method, path, "Authorization", "Bearer "+token))
		return w
	}
	if w := do("POST", "/api/tokens/crew/rotate", crew); w.Code != http.StatusForbidden {
		t.Fatalf("crew rotating: %d", w.Code)
	}
	if w := do("POST", "/api/tokens/crew/rotate", admin); w.Code != 200 || !strings.Contains(w.Body.String(), "fkc_") {
		t.Fatalf("admin rotating: %d %s", w.Code, w.Body)
	}
	if w := do("GET", "/api/whoami", crew); w.Code != http.StatusUnauthorized {
		t.Fatalf("old crew token after rotation: %d", w.Code)
	}
}
