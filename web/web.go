// Package web is the crew's page: one HTML page with its CSS and script
// embedded in the binary (no CDN, works with no internet), the login
// form, and a server-sent event stream that pushes the status, pre-show
// check, scenes, batteries, printers and receipt backlog as they change.
package web

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"fieldkit/internal/auth"
	"fieldkit/internal/bus"
	"fieldkit/internal/clock"
	"fieldkit/internal/deps"
	"fieldkit/internal/health"
	"fieldkit/internal/httpapi"
)

//go:embed assets
var assetFS embed.FS

// Deps are what the page needs from the agent.
type Deps struct {
	Auth *auth.Auth
	// Handler returns the agent's router, which the event stream reads
	// the sections from (called after every route is registered).
	Handler func() http.Handler
	Bus     *bus.Bus
	Health  *health.Registry
	Clock   clock.Clock
	Log     *slog.Logger
	Box     string
	// Sources are the page's sections (nil: DefaultSources).
	Sources []Source
	// Tick is how often sections are re-read while a page is open, for
	// state that changes without a bus event (0: 1 s).
	Tick time.Duration
	// Heartbeat is how often the stream says "alive" (0: 500 ms); the
	// page goes stale after 2 s without a word.
	Heartbeat time.Duration
}

// Server serves the page.
type Server struct {
	d      Deps
	hub    *hub
	assets map[string]*asset
	index  *asset
	login  *template.Template
}

// asset is a file ready to serve, with its gzip form made once.
type asset struct {
	ctype string
	raw   []byte
	gz    []byte
	etag  string
}

func newAsset(name string, raw []byte) *asset {
	var b bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	zw.Write(raw)
	zw.Close()
	sum := sha256.Sum256(raw)
	ct := mime.TypeByExtension(path.Ext(name))
	if ct == "" {
		ct = "application/octet-stream"
	}
	return &asset{ctype: ct, raw: raw, gz: b.Bytes(), etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
}

// New prepares the page and its assets.
func New(d Deps) (*Server, error) {
	if d.Auth == nil || d.Handler == nil {
		return nil, errors.New("web: Auth and Handler are required")
	}
	d.Clock, d.Log = deps.Clock(d.Clock), deps.Log(d.Log)
	if d.Sources == nil {
		d.Sources = DefaultSources
	}
	if d.Tick == 0 {
		d.Tick = time.Second
	}
	if d.Heartbeat == 0 {
		d.Heartbeat = 500 * time.Millisecond
	}
	s := &Server{d: d, assets: map[string]*asset{}}
	err := fs.WalkDir(assetFS, "assets", func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() || strings.HasSuffix(p, ".tmpl") {
			return err
		}
		b, err := assetFS.ReadFile(p)
		if err != nil {
			return err
		}
		s.assets[strings.TrimPrefix(p, "assets/")] = newAsset(p, b)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("web: assets: %w", err)
	}
	tmpl, err := template.ParseFS(assetFS, "assets/*.tmpl")
	if err != nil {
		return nil, fmt.Errorf("web: templates: %w", err)
	}
	var page bytes.Buffer
	err = tmpl.ExecuteTemplate(&page, "index.html.tmpl", map[string]any{
		"Box": d.Box, "Open": !d.Auth.Required(),
		"CSS": s.assets["app.css"].etag[1:9], "JS": s.assets["app.js"].etag[1:9],
	})
	if err != nil {
		return nil, fmt.Errorf("web: page: %w", err)
	}
	s.index = newAsset("index.html", page.Bytes())
	s.login = tmpl.Lookup("login.html.tmpl")
	s.hub = newHub(d.Sources, d.Handler, d.Bus, d.Clock, d.Tick, d.Heartbeat)
	if d.Health != nil {
		d.Health.OnChange(func(health.Part) { s.hub.Kick() })
	}
	return s, nil
}

// Run feeds the event stream until ctx ends.
func (s *Server) Run(ctx context.Context) error { return s.hub.run(ctx) }

// Kick pushes fresh state to open pages now (after an action).
func (s *Server) Kick() { s.hub.Kick() }

// Routes registers the page, login, assets and the event stream.
//
//	GET  /               the page (redirects to /login without a session)
//	GET  /login, POST /login, POST /logout
//	GET  /assets/{file}  CSS and script (public: they hold no data)
//	GET  /api/events     server-sent events (crew)
func (s *Server) Routes(r *httpapi.Router) {
	r.HandleFunc("GET /{$}", httpapi.Public, s.page)
	r.HandleFunc("GET /login", httpapi.Public, s.loginForm)
	r.HandleFunc("POST /login", httpapi.Public, s.doLogin)
	r.HandleFunc("POST /logout", httpapi.Public, s.doLogout)
	r.HandleFunc("GET /assets/{file}", httpapi.Public, s.asset)
	r.HandleFunc("GET /api/events", httpapi.Crew, s.hub.serve)
}

// securityHeaders keep the page from being framed or fed foreign script.
func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
}

func (s *Server) page(w http.ResponseWriter, r *http.Request) {
	if _, err := s.d.Auth.RoleOf(r); err != nil {
		if s.d.Auth.Required() {
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		httpapi.Error(w, http.StatusForbidden, err.Error())
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	s.serveAsset(w, r, s.index)
}

func (s *Server) asset(w http.ResponseWriter, r *http.Request) {
	a, ok := s.assets[r.PathValue("file")]
	if !ok {
		httpapi.Error(w, http.StatusNotFound, "no such file")
		return
	}
	// Names carry a version query (?v=hash), so a year is safe.
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	s.serveAsset(w, r, a)
}

func (s *Server) serveAsset(w http.ResponseWriter, r *http.Request, a *asset) {
	h := w.Header()
	securityHeaders(h)
	h.Set("Content-Type", a.ctype)
	h.Set("ETag", a.etag)
	h.Add("Vary", "Accept-Encoding")
	if inm := r.Header.Get("If-None-Match"); inm == a.etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	body := a.raw
	if acceptsGzip(r) {
		h.Set("Content-Encoding", "gzip")
		body = a.gz
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.TrimSpace(enc) == "gzip" && strings.ReplaceAll(q, " ", "") != "q=0" {
			return true
		}
	}
	return false
}

type loginView struct {
	Box, Error, Name, CSS string
	Open                  bool
}

func (s *Server) renderLogin(w http.ResponseWriter, code int, v loginView) {
	v.Box, v.Open, v.CSS = s.d.Box, !s.d.Auth.Required(), s.assets["app.css"].etag[1:9]
	h := w.Header()
	securityHeaders(h)
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	if err := s.login.Execute(w, v); err != nil {
		s.d.Log.Warn("web: login page", "err", err)
	}
}

func (s *Server) loginForm(w http.ResponseWriter, r *http.Request) {
	s.renderLogin(w, http.StatusOK, loginView{})
}

func (s *Server) doLogin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	if err := r.ParseForm(); err != nil {
		s.renderLogin(w, http.StatusBadRequest, loginView{Error: "could not read the form"})
		return
	}
	name := r.PostForm.Get("name")
	_, err := s.d.Auth.Login(w, r, r.PostForm.Get("token"), name)
	var rl *auth.RateLimitedError
	switch {
	case err == nil:
		http.Redirect(w, r, "/", http.StatusSeeOther)
	case errors.As(err, &rl):
		w.Header().Set("Retry-After", strconv.Itoa(int(rl.Wait.Seconds()+0.999)))
		s.renderLogin(w, http.StatusTooManyRequests, loginView{Error: err.Error(), Name: name})
	case errors.Is(err, auth.ErrCrossSite):
		s.renderLogin(w, http.StatusForbidden, loginView{Error: err.Error()})
	default:
		s.renderLogin(w, http.StatusUnauthorized, loginView{Error: "That token is not the crew or admin token. Ask whoever set up the box (firmware-agent token show).", Name: name})
	}
}

func (s *Server) doLogout(w http.ResponseWriter, r *http.Request) {
	if err := auth.CheckSameOrigin(r); err != nil {
		httpapi.Error(w, http.StatusForbidden, err.Error())
		return
	}
	s.d.Auth.Logout(w, r)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}
