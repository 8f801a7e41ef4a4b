// Package httpapi is the agent's HTTP server: parts register their routes
// with the role a caller needs, and share one way of answering in JSON.
package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"
)

// Role is what a caller must hold to use a route.
type Role int

const (
	Public Role = iota // health checks, the login page
	Crew               // read-only pages and show operations
	Admin              // config, reloads, key rotation
)

func (r Role) String() string {
	switch r {
	case Public:
		return "public"
	case Crew:
		return "crew"
	case Admin:
		return "admin"
	}
	return fmt.Sprintf("role(%d)", int(r))
}

// Authorizer decides who a request comes from. It returns the role the
// caller holds, or an error that is answered as 401 (403 when it is
// ErrForbidden: no credential would help, e.g. a cross-site request).
type Authorizer interface {
	RoleOf(r *http.Request) (Role, error)
}

// ErrForbidden marks an Authorizer's refusal that is not about missing or
// wrong credentials; match it with errors.Is.
var ErrForbidden = errors.New("forbidden")

// OpenAuth grants every caller the admin role: the loopback demo.
type OpenAuth struct{}

func (OpenAuth) RoleOf(*http.Request) (Role, error) { return Admin, nil }

// Router collects routes; it serves them through Handler.
type Router struct {
	mux  *http.ServeMux
	auth Authorizer
	log  *slog.Logger
}

// NewRouter returns a router that checks roles with auth.
func NewRouter(auth Authorizer, log *slog.Logger) *Router {
	if auth == nil {
		auth = OpenAuth{}
	}
	if log == nil {
		log = slog.Default()
	}
	return &Router{mux: http.NewServeMux(), auth: auth, log: log}
}

// SetAuth replaces the authorizer (before serving).
func (rt *Router) SetAuth(a Authorizer) { rt.auth = a }

// Handle registers h for a net/http pattern ("POST /api/x/{name}") that
// callers need role need for.
func (rt *Router) Handle(pattern string, need Role, h http.Handler) {
	rt.mux.Handle(pattern, rt.guard(need, h))
}

// HandleFunc is Handle for a function.
func (rt *Router) HandleFunc(pattern string, need Role, h func(http.ResponseWriter, *http.Request)) {
	rt.Handle(pattern, need, http.HandlerFunc(h))
}

func (rt *Router) guard(need Role, h http.Handler) http.Handler {
	if need == Public {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, err := rt.auth.RoleOf(r)
		if errors.Is(err, ErrForbidden) {
			Error(w, http.StatusForbidden, err.Error())
			return
		}
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="fieldkit"`)
			Error(w, http.StatusUnauthorized, err.Error())
			return
		}
		if got < need {
			Error(w, http.StatusForbidden, fmt.Sprintf("this needs the %s token; you are signed in as %s", need, got))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Handler is the router as an http.Handler, with panics turned into 500s
// so that one bad request never takes the agent down. Every answer says
// nosniff, and every one but the static assets no-store: API answers hold
// the box's live state and, with auth on, a crew member's view of it.
func (rt *Router) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		if !strings.HasPrefix(r.URL.Path, "/assets/") {
			h.Set("Cache-Control", "no-store")
		}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				rt.log.Error("http handler panicked", "method", r.Method, "path", r.URL.Path, "panic", v)
				Error(w, http.StatusInternalServerError, "internal error; see the agent log")
			}
		}()
		rt.mux.ServeHTTP(w, r)
	})
}

// WriteJSON answers v as JSON with status code.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// Error answers {"error": msg} with status code.
func Error(w http.ResponseWriter, code int, msg string) {
	WriteJSON(w, code, map[string]string{"error": msg})
}

// ErrBody is returned by DecodeJSON; its Code is the status to answer.
type ErrBody struct {
	Code int
	Msg  string
}

func (e *ErrBody) Error() string { return e.Msg }

// DecodeJSON reads at most max bytes of a JSON body into v, refusing
// unknown fields, trailing data, non-UTF-8 and a wrong content type.
func DecodeJSON(w http.ResponseWriter, r *http.Request, max int64, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return &ErrBody{http.StatusUnsupportedMediaType, fmt.Sprintf("content type %q: send application/json", ct)}
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &ErrBody{http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", max)}
		}
		return &ErrBody{http.StatusBadRequest, "reading body: " + err.Error()}
	}
	return DecodeStrict(body, v)
}

// DecodeStrict decodes one JSON value from body into v, refusing unknown
// fields, trailing data and non-UTF-8, with a 400-style *ErrBody.
func DecodeStrict(body []byte, v any) error {
	if !utf8.Valid(body) {
		return &ErrBody{http.StatusBadRequest, "body is not valid UTF-8"}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &ErrBody{http.StatusBadRequest, "bad JSON: " + err.Error()}
	}
	if dec.More() {
		return &ErrBody{http.StatusBadRequest, "bad JSON: trailing data after the object"}
	}
	return nil
}

// WriteErr answers err: an *ErrBody with its code, anything else as 500.
func WriteErr(w http.ResponseWriter, err error) {
	var eb *ErrBody
	if errors.As(err, &eb) {
		Error(w, eb.Code, eb.Msg)
		return
	}
	Error(w, http.StatusInternalServerError, err.Error())
}
