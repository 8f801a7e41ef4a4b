package preflight

import (
	"errors"
	"net/http"

	"fieldkit/internal/httpapi"
)

// Routes registers the page's pre-show API. Signing off is a show
// operation, so the crew token is enough.
//
//	GET  /api/preflight/state    last check run, sign-offs and the gate
//	POST /api/preflight/run      run the automatic checks now
//	POST /api/preflight/signoff  {"item": id, "by"?: name, "note"?: text}
//	POST /api/preflight/unsign   {"item": id, "by"?: name}
//	POST /api/preflight/reset    {"by"?: name}  (clears all, next show)
func (s *Service) Routes(r *httpapi.Router) {
	r.HandleFunc("GET /api/preflight/state", httpapi.Crew, func(w http.ResponseWriter, req *http.Request) {
		s.mu.Lock()
		never := s.checked.IsZero()
		s.mu.Unlock()
		if never {
			httpapi.WriteJSON(w, http.StatusOK, s.Refresh(req.Context()))
			return
		}
		httpapi.WriteJSON(w, http.StatusOK, s.State())
	})
	r.HandleFunc("POST /api/preflight/run", httpapi.Crew, func(w http.ResponseWriter, req *http.Request) {
		httpapi.WriteJSON(w, http.StatusOK, s.Refresh(req.Context()))
	})
	type body struct {
		Item string `json:"item"`
		By   string `json:"by"`
		Note string `json:"note"`
	}
	op := func(do func(b body) error) http.HandlerFunc {
		return func(w http.ResponseWriter, req *http.Request) {
			var b body
			if err := httpapi.DecodeJSON(w, req, 4096, &b); err != nil {
				httpapi.WriteErr(w, err)
				return
			}
			if b.By == "" && s.deps.Who != nil {
				b.By = s.deps.Who(req)
			}
			if err := do(b); err != nil {
				code := http.StatusInternalServerError
				switch {
				case errors.Is(err, ErrUnknownItem):
					code = http.StatusNotFound
				case errors.Is(err, ErrNoSigner), errors.Is(err, errTooLong):
					code = http.StatusBadRequest
				}
				httpapi.Error(w, code, err.Error())
				return
			}
			httpapi.WriteJSON(w, http.StatusOK, s.State())
		}
	}
	r.HandleFunc("POST /api/preflight/signoff", httpapi.Crew, op(func(b body) error { return s.Sign(b.Item, b.By, b.Note) }))
	r.HandleFunc("POST /api/preflight/unsign", httpapi.Crew, op(func(b body) error { return s.Unsign(b.Item, b.By) }))
	r.HandleFunc("POST /api/preflight/reset", httpapi.Crew, op(func(b body) error { return s.Reset(b.By) }))
}
