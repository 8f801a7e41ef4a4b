package auth

import (
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"fieldkit/internal/httpapi"
)

// After logout the same cookie is refused, by this Auth and by one built
// later over the same token dir (an agent restart).
func TestLogoutRevokesTheSession(t *testing.T) {
	a, _ := newAuth(t, true)
	login := req("POST", "/login")
	rec := httptest.NewRecorder()
	if _, err := a.Login(rec, login, tok(t, a, httpapi.Crew), "ana"); err != nil {
		t.Fatal(err)
	}
	cookie := rec.Result().Cookies()[0]
	withCookie := func() *http.Request {
		r := req("GET", "/api/status")
		r.AddCookie(cookie)
		return r
	}
	if role, err := a.RoleOf(withCookie()); err != nil || role != httpapi.Crew {
		t.Fatalf("before logout: %v %v", role, err)
	}
	other := httptest.NewRecorder()
	if _, err := a.Login(other, req("POST", "/login"), tok(t, a, httpapi.Crew), "ben"); err != nil {
		t.Fatal(err)
	}
	otherCookie := other.Result().Cookies()[0]

	out := req("POST", "/logout")
	out.AddCookie(cookie)
	a.Logout(httptest.NewRecorder(), out)
	if _, err := a.RoleOf(withCookie()); err == nil {
		t.Fatal("the cookie still works after logout")
	}
	if a.Who(withCookie()) != "" {
		t.Fatal("Who still names the logged-out session")
	}
	r := req("GET", "/api/status")
	r.AddCookie(otherCookie)
	if role, err := a.RoleOf(r); err != nil || role != httpapi.Crew {
		t.Fatalf("another crew member's session ended too: %v %v", role, err)
	}

	again := New(a.Store(), Options{Required: true, Clock: a.o.Clock})
	if _, err := again.RoleOf(withCookie()); err == nil {
		t.Fatal("the logged-out cookie works again after a restart")
	}
}

// The whole origin must match: scheme, host and port.
func TestSameOriginIsWholeOrigin(t *testing.T) {
	post := func(origin string, tlsOn bool) *http.Request {
		r := req("POST", "/api/x", "Origin", origin)
		r.Host = "box.local:8080"
		if tlsOn {
			r.TLS = &tls.ConnectionState{}
		}
		return r
	}
	for _, tc := range []struct {
		origin string
		tls    bool
		ok     bool
	}{
		{"http://box.local:8080", false, true},
		{"HTTP://BOX.local:8080", false, true},
		{"https://box.local:8080", false, false}, // wrong scheme
		{"http://box.local:8080", true, false},   // wrong scheme under TLS
		{"https://box.local:8080", true, true},
		{"http://box.local:8081", false, false},
		{"http://box.local", false, false},
		{"http://evil.example:8080", false, false},
		{"null", false, false},
		{"http://box.local:8080/path", false, false},
	} {
		err := CheckSameOrigin(post(tc.origin, tc.tls))
		if (err == nil) != tc.ok {
			t.Errorf("Origin %q (tls %v): err %v, want ok=%v", tc.origin, tc.tls, err, tc.ok)
		}
		if err != nil && !errors.Is(err, httpapi.ErrForbidden) {
			t.Errorf("Origin %q: refusal %v is not a 403", tc.origin, err)
		}
	}
	r := req("POST", "/api/x", "Origin", "http://box.local")
	r.Host = "box.local:80"
	if err := CheckSameOrigin(r); err != nil {
		t.Errorf("default port: %v", err)
	}
	r = req("POST", "/api/x", "Sec-Fetch-Site", "same-origin", "Origin", "https://127.0.0.1:8080")
	if err := CheckSameOrigin(r); err == nil {
		t.Error("Sec-Fetch-Site same-origin let a wrong-scheme Origin through")
	}
}
