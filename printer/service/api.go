package service

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"fieldkit/internal/doctor"
	"fieldkit/internal/httpapi"
	"fieldkit/internal/sqlitex"
	"fieldkit/printer/label"
	"fieldkit/printer/queue"
	"fieldkit/printer/status"
)

// Routes registers the printer API, all for the crew role:
//
//	GET  /api/printers                  every printer's state and queue depth
//	POST /api/printers/{name}/jobs      queue a JobRequest (201 new, 200 same id again)
//	GET  /api/printers/{name}/jobs      recent jobs (?limit=50&state=uncertain)
//	GET  /api/jobs/{id}                 one job
//	POST /api/jobs/{id}/reprint         print again on the operator's word
//	POST /api/jobs/{id}/cancel          drop a job that has not printed
func (s *Service) Routes(r *httpapi.Router) {
	r.HandleFunc("GET /api/printers", httpapi.Crew, func(w http.ResponseWriter, _ *http.Request) {
		httpapi.WriteJSON(w, http.StatusOK, s.States())
	})
	r.HandleFunc("POST /api/printers/{name}/jobs", httpapi.Crew, s.postJob)
	r.HandleFunc("GET /api/printers/{name}/jobs", httpapi.Crew, s.listJobs)
	r.HandleFunc("GET /api/jobs/{id}", httpapi.Crew, func(w http.ResponseWriter, r *http.Request) {
		j, err := s.store.Get(r.Context(), r.PathValue("id"))
		if err != nil {
			writeErr(w, err)
			return
		}
		httpapi.WriteJSON(w, http.StatusOK, s.withWarnings(j))
	})
	r.HandleFunc("POST /api/jobs/{id}/reprint", httpapi.Crew, func(w http.ResponseWriter, r *http.Request) {
		j, err := s.Reprint(r.Context(), r.PathValue("id"))
		if err != nil {
			writeErr(w, err)
			return
		}
		httpapi.WriteJSON(w, http.StatusCreated, j)
	})
	r.HandleFunc("POST /api/jobs/{id}/cancel", httpapi.Crew, func(w http.ResponseWriter, r *http.Request) {
		j, err := s.Cancel(r.Context(), r.PathValue("id"))
		if err != nil {
			writeErr(w, err)
			return
		}
		httpapi.WriteJSON(w, http.StatusOK, j)
	})
}

func (s *Service) postJob(w http.ResponseWriter, r *http.Request) {
	var req JobRequest
	if err := httpapi.DecodeJSON(w, r, label.MaxJSONBytes+4096, &req); err != nil {
		httpapi.WriteErr(w, err)
		return
	}
	j, created, err := s.Submit(r.Context(), r.PathValue("name"), req)
	if err != nil {
		writeErr(w, err)
		return
	}
	code := http.StatusOK
	if created {
		code = http.StatusCreated
	}
	httpapi.WriteJSON(w, code, j)
}

func (s *Service) listJobs(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if _, ok := s.workers[name]; !ok {
		writeErr(w, fmt.Errorf("%w %q", ErrUnknownPrinter, name))
		return
	}
	limit := 50
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			httpapi.Error(w, http.StatusBadRequest, "limit: expected 1-1000")
			return
		}
		limit = n
	}
	var states []queue.State
	for _, v := range r.URL.Query()["state"] {
		states = append(states, queue.State(v))
	}
	jobs, err := s.store.List(r.Context(), name, limit, states...)
	if err != nil {
		writeErr(w, err)
		return
	}
	if jobs == nil {
		jobs = []queue.Job{}
	}
	for i := range jobs {
		jobs[i] = s.withWarnings(jobs[i])
	}
	httpapi.WriteJSON(w, http.StatusOK, jobs)
}

func writeErr(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrUnknownPrinter), errors.Is(err, queue.ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, ErrBadRequest), errors.Is(err, queue.ErrBadID):
		code = http.StatusBadRequest
	case errors.Is(err, queue.ErrConflict), errors.Is(err, queue.ErrIDReused):
		code = http.StatusConflict
	case sqlitex.IsFull(err):
		code = http.StatusInsufficientStorage
		err = fmt.Errorf("disk full: the print queue cannot take the job; free space on the box's disk (%w)", err)
	}
	httpapi.Error(w, code, err.Error())
}

// Checks returns one pre-show check per printer: it asks the printer for
// its status now, through the worker's own connection.
func (s *Service) Checks() []doctor.Check {
	var out []doctor.Check
	for _, name := range s.names {
		w := s.workers[name]
		out = append(out, doctor.Check{
			Name: "printer " + name,
			Run:  func(ctx context.Context) doctor.Result { return w.check(ctx) },
		})
	}
	return out
}

func (w *worker) check(ctx context.Context) doctor.Result {
	rep := w.readStatus(ctx, w.cfg.StatusTimeout)
	where := fmt.Sprintf("%s over %s", w.cfg.Language, w.cfg.Transport)
	if w.dev != nil {
		where += " at " + w.dev()
	}
	unc, _ := w.store.Count(ctx, w.name, queue.Uncertain)
	switch rep.State {
	case status.Ready:
		if unc > 0 {
			return doctor.Warnf("open the printer queue on the crew page and reprint or cancel each uncertain job",
				"%s: ready, but %d job(s) may or may not have printed", where, unc)
		}
		return doctor.Pass(where + ": ready")
	case status.PaperLow:
		return doctor.Warnf("put a fresh roll next to the printer", "%s: %s", where, rep)
	case status.PaperOut:
		return doctor.Failf("load paper; the queue resumes by itself", "%s: %s", where, rep)
	case status.CoverOpen:
		return doctor.Failf("close the printer cover; the queue resumes by itself", "%s: %s", where, rep)
	case status.Offline:
		return doctor.Failf(fmt.Sprintf("check that printer %s is on and its cable is in (for a network printer, that the address answers)", w.name),
			"%s: %s", where, rep)
	case status.Unknown:
		return doctor.Failf(fmt.Sprintf("power-cycle printer %s; if it still does not answer, check language and baud in the config", w.name),
			"%s: %s", where, rep)
	}
	return doctor.Failf(fmt.Sprintf("look at printer %s (lights, paper path, cutter); power-cycle it", w.name), "%s: %s", where, rep)
}
