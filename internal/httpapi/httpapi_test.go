package httpapi

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

type fixedRole struct {
	role Role
	err  error
}

func (f fixedRole) RoleOf(*http.Request) (Role, error) { return f.role, f.err }

func TestGuardRolesAndPanics(t *testing.T) {
	for _, c := range []struct {
		auth      Authorizer
		need      Role
		wantCode  int
		wantInMsg string
	}{
		{fixedRole{Crew, nil}, Crew, 200, ""},
		{fixedRole{Crew, nil}, Admin, 403, "needs the admin token"},
		{fixedRole{Public, errors.New("no token given")}, Crew, 401, "no token given"},
		{fixedRole{Public, errors.New("no token given")}, Public, 200, ""},
		{OpenAuth{}, Admin, 200, ""},
	} {
		rt := NewRouter(c.auth, nil)
		rt.HandleFunc("GET /x", c.need, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(200) })
		rec := httptest.NewRecorder()
		rt.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
		if rec.Code != c.wantCode || !strings.Contains(rec.Body.String(), c.wantInMsg) {
			t.Errorf("need %v with %+v: %d %q", c.need, c.auth, rec.Code, rec.Body.String())
		}
		if c.wantCode == 401 && rec.Header().Get("WWW-Authenticate") == "" {
			t.Error("401 without WWW-Authenticate")
		}
	}
	rt := NewRouter(nil, nil)
	rt.HandleFunc("GET /boom", Public, func(http.ResponseWriter, *http.Request) { panic("bug") })
	rec := httptest.NewRecorder()
	rt.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/boom", nil))
	if rec.Code != 500 || !strings.Contains(rec.Body.String(), "internal error") {
		t.Fatalf("panic answered %d %q", rec.Code, rec.Body.String())
	}
}

func TestDecodeJSON(t *testing.T) {
	type body struct {
		Name string `json:"name"`
	}
	for _, c := range []struct {
		ct, body string
		code     int
	}{
		{"application/json", `{"name":"a"}`, 0},
		{"", `{"name":"a"}`, 0},
		{"text/plain", `{"name":"a"}`, 415},
		{"application/json", `{"name":"a","extra":1}`, 400},
		{"application/json", `{"name":"a"} {}`, 400},
		{"application/json", "{\"name\":\"\xff\"}", 400},
		{"application/json", `{"name":"` + strings.Repeat("x", 200) + `"}`, 413},
		{"application/json", `{"name":`, 400},
	} {
		req := httptest.NewRequest("POST", "/", strings.NewReader(c.body))
		if c.ct != "" {
			req.Header.Set("Content-Type", c.ct)
		}
		var b body
		err := DecodeJSON(httptest.NewRecorder(), req, 100, &b)
		var eb *ErrBody
		switch {
		case c.code == 0 && err != nil:
			t.Errorf("%q: %v", c.body, err)
		case c.code != 0 && (!errors.As(err, &eb) || eb.Code != c.code):
			t.Errorf("%q (%s): got %v, want code %d", c.body, c.ct, err, c.code)
		}
	}
}
