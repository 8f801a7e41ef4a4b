// Package auth decides who an HTTP request comes from: the crew and admin
// tokens (files under the data dir), sessions in a signed HttpOnly,
// SameSite=Strict cookie set by the login form, or a Bearer header for
// scripts. It refuses cross-site state changes (Origin and
// Sec-Fetch-Site), slows down token guessing per client IP, and in the
// open loopback demo grants everyone admin while still refusing
// cross-site requests and DNS-rebinding host names.
package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"fieldkit/internal/clock"
	"fieldkit/internal/deps"
	"fieldkit/internal/doctor"
	"fieldkit/internal/httpapi"
)

// Options configure an Auth.
type Options struct {
	// Required turns tokens on; when false every caller is admin (the
	// loopback demo).
	Required bool
	// Secure marks cookies Secure (the agent serves TLS).
	Secure bool
	// SessionTTL is how long a login lasts (0: 12 h, a show day).
	SessionTTL time.Duration
	Clock      clock.Clock
	Log        *slog.Logger
}

// Auth is the agent's httpapi.Authorizer.
type Auth struct {
	store   *Store
	o       Options
	limiter *Limiter
	revoked *revocations
}

// Errors, answered as 401 by the router (or 429 by the login form);
// ErrCrossSite and ErrHostName as 403: no token would make them right.
var (
	ErrNoCredentials = errors.New("log in with the crew or admin token (firmware-agent token show), or send Authorization: Bearer <token>")
	ErrBadToken      = errors.New("wrong token")
	ErrCrossSite     = forbidden("cross-site request refused: state changes must come from this agent's own page")
	ErrHostName      = forbidden("refused: the open demo answers only to localhost or an IP address (DNS rebinding guard)")
)

// forbiddenError is a refusal the router answers with 403.
type forbiddenError struct{ msg string }

func forbidden(msg string) error               { return &forbiddenError{msg} }
func (e *forbiddenError) Error() string        { return e.msg }
func (e *forbiddenError) Is(target error) bool { return target == httpapi.ErrForbidden }

// RateLimitedError says how long a client must wait.
type RateLimitedError struct{ Wait time.Duration }

func (e *RateLimitedError) Error() string {
	return fmt.Sprintf("too many failed logins from this address; try again in %s", e.Wait.Round(time.Second))
}

// New returns an Auth over store.
func New(store *Store, o Options) *Auth {
	o.Clock, o.Log = deps.Clock(o.Clock), deps.Log(o.Log)
	if o.SessionTTL == 0 {
		o.SessionTTL = 12 * time.Hour
	}
	a := &Auth{store: store, o: o, limiter: NewLimiter(o.Clock), revoked: openRevocations(store.dir)}
	if err := a.revoked.load(o.Clock.Now()); err != nil {
		o.Log.Warn("http: ended sessions list unreadable; starting a new one", "err", err)
	}
	return a
}

// Limiter is the failed-login limiter, for tuning in tests.
func (a *Auth) Limiter() *Limiter { return a.limiter }

// Required reports whether tokens are needed.
func (a *Auth) Required() bool { return a.o.Required }

// Store is the token store.
func (a *Auth) Store() *Store { return a.store }

type internalKey struct{}

// WithRole marks ctx as an in-process request made with role (the live
// event stream reading the agent's own API). A network request cannot
// carry it.
func WithRole(ctx context.Context, role httpapi.Role) context.Context {
	return context.WithValue(ctx, internalKey{}, role)
}

// RoleOf implements httpapi.Authorizer.
func (a *Auth) RoleOf(r *http.Request) (httpapi.Role, error) {
	if role, ok := r.Context().Value(internalKey{}).(httpapi.Role); ok {
		return role, nil
	}
	if err := CheckSameOrigin(r); err != nil {
		return httpapi.Public, err
	}
	if !a.o.Required {
		if !hostIsLocal(r.Host) {
			return httpapi.Public, ErrHostName
		}
		return httpapi.Admin, nil
	}
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Bearer") {
			return httpapi.Public, fmt.Errorf("authorization scheme %q: use Bearer", scheme)
		}
		return a.checkToken(r, strings.TrimSpace(tok))
	}
	if c, err := r.Cookie(CookieName); err == nil {
		_, role, err := a.checkSession(c.Value)
		return role, err
	}
	return httpapi.Public, ErrNoCredentials
}

func (a *Auth) checkToken(r *http.Request, tok string) (httpapi.Role, error) {
	ip := clientIP(r)
	if d := a.limiter.Wait(ip); d > 0 {
		return httpapi.Public, &RateLimitedError{d}
	}
	role, ok := a.store.Match(tok)
	if !ok {
		d := a.limiter.Fail(ip)
		a.o.Log.Warn("http: wrong token", "client", ip, "path", r.URL.Path, "locked_for", d)
		return httpapi.Public, ErrBadToken
	}
	a.limiter.OK(ip)
	return role, nil
}

// Who is the name given at login ("" for scripts and the open demo).
func (a *Auth) Who(r *http.Request) string {
	c, err := r.Cookie(CookieName)
	if err != nil {
		return ""
	}
	s, _, err := a.checkSession(c.Value)
	if err != nil {
		return ""
	}
	return s.Name
}

// Login checks tok and, when it is a crew or admin token, sets the
// session cookie for name. Failed tries are rate-limited per client IP
// (*RateLimitedError).
func (a *Auth) Login(w http.ResponseWriter, r *http.Request, tok, name string) (httpapi.Role, error) {
	if err := CheckSameOrigin(r); err != nil {
		return httpapi.Public, err
	}
	role, err := a.checkToken(r, strings.TrimSpace(tok))
	if err != nil {
		return role, err
	}
	name = strings.TrimSpace(name)
	if len(name) > 64 {
		name = name[:64]
	}
	exp := a.o.Clock.Now().Add(a.o.SessionTTL)
	v, err := a.encodeSession(session{Role: role.String(), Name: name, Exp: exp.Unix()})
	if err != nil {
		return httpapi.Public, err
	}
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: v, Path: "/", MaxAge: int(a.o.SessionTTL / time.Second),
		HttpOnly: true, Secure: a.o.Secure, SameSite: http.SameSiteStrictMode,
	})
	a.o.Log.Info("http: login", "role", role, "name", name, "client", clientIP(r))
	return role, nil
}

// Logout ends the request's session on the server, so that the cookie is
// refused from now on even if a copy of it was kept, and clears it in the
// browser.
func (a *Auth) Logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(CookieName); err == nil {
		if s, _, err := a.checkSession(c.Value); err == nil {
			if err := a.revoked.add(c.Value, s.Exp, a.o.Clock.Now()); err != nil {
				a.o.Log.Error("http: logout not recorded on disk; the session ends only until the agent restarts", "err", err)
			}
			a.o.Log.Info("http: logout", "role", s.Role, "name", s.Name, "client", clientIP(r))
		}
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: a.o.Secure, SameSite: http.SameSiteStrictMode})
}

// CheckSameOrigin refuses a state-changing request that a browser marks
// as coming from another site. Scripts (no Origin, no Sec-Fetch-Site)
// pass; they must hold a token anyway when auth is on.
func CheckSameOrigin(r *http.Request) error {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return nil
	}
	// Sec-Fetch-Site is set by the browser and cannot be forged by a page.
	// Origin is checked as well wherever it is sent: the whole origin,
	// scheme, host and port, since http://box and https://box are two
	// origins (a "null" Origin is refused).
	if s := r.Header.Get("Sec-Fetch-Site"); s != "" && s != "same-origin" && s != "none" {
		return ErrCrossSite
	}
	if o := r.Header.Get("Origin"); o != "" && !sameOrigin(o, r) {
		return ErrCrossSite
	}
	return nil
}

// sameOrigin compares an Origin header with the origin the request was
// made to: the scheme the agent serves on this connection, and the Host.
func sameOrigin(origin string, r *http.Request) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || u.Path != "" || u.User != nil {
		return false
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if !strings.EqualFold(u.Scheme, scheme) {
		return false
	}
	return strings.EqualFold(withPort(u.Host, scheme), withPort(r.Host, scheme))
}

// withPort adds the scheme's default port to a host without one.
func withPort(host, scheme string) string {
	if _, _, err := net.SplitHostPort(host); err == nil {
		return host
	}
	port := "80"
	if scheme == "https" {
		port = "443"
	}
	return net.JoinHostPort(strings.Trim(host, "[]"), port)
}

func hostIsLocal(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	host = strings.Trim(host, "[]")
	return strings.EqualFold(host, "localhost") || net.ParseIP(host) != nil
}

// clientIP is the peer address; forwarded headers are not trusted, since
// the agent is reached directly on the venue network.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// Routes registers token rotation (admin):
//
//	POST /api/tokens/{role}/rotate   → {"role": "crew", "token": "..."}
//	GET  /api/whoami                 → {"role": "crew", "name": "...", "auth": true}
func (a *Auth) Routes(rt *httpapi.Router) {
	rt.HandleFunc("POST /api/tokens/{role}/rotate", httpapi.Admin, func(w http.ResponseWriter, r *http.Request) {
		role, ok := roleByName(r.PathValue("role"))
		if !ok {
			httpapi.Error(w, http.StatusNotFound, "no such role; expected crew or admin")
			return
		}
		tok, err := a.store.Rotate(role)
		if err != nil {
			httpapi.WriteErr(w, err)
			return
		}
		a.o.Log.Warn("http: token rotated; sessions of this role have ended", "role", role, "client", clientIP(r))
		httpapi.WriteJSON(w, http.StatusOK, map[string]string{"role": role.String(), "token": tok})
	})
	rt.HandleFunc("GET /api/whoami", httpapi.Crew, func(w http.ResponseWriter, r *http.Request) {
		role, _ := a.RoleOf(r)
		httpapi.WriteJSON(w, http.StatusOK, map[string]any{"role": role.String(), "name": a.Who(r), "auth": a.o.Required})
	})
}

// Checks report on the HTTP security.
func (a *Auth) Checks(listen string, tls bool) []doctor.Check {
	return []doctor.Check{{Name: "http auth", Run: func(context.Context) doctor.Result {
		if !a.o.Required {
			return doctor.Warnf("set http.listen to a venue address (tokens turn on) or http.auth: required",
				"open: no token needed on %s (loopback demo)", listen)
		}
		for _, role := range tokenRoles {
			if _, err := a.store.Token(role); err != nil {
				return doctor.Failf("delete the token file and restart the agent to make a new one", "%v", err)
			}
		}
		if !tls && !isLoopback(listen) {
			return doctor.Pass("tokens required on " + listen + " (plain HTTP: set http.tls_cert/tls_key on untrusted networks)")
		}
		return doctor.Pass("tokens required on " + listen)
	}}}
}

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return host == "localhost" || (ip != nil && ip.IsLoopback())
}
