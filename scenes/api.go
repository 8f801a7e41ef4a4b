package scenes

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"fieldkit/internal/doctor"
	"fieldkit/internal/httpapi"
	"fieldkit/internal/topic"
)

// Summary is one scene in GET /api/scenes.
type Summary struct {
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	File        string   `json:"file"`
	Policy      Policy   `json:"policy"`
	Steps       int      `json:"steps"`
	Length      string   `json:"length"`
	Triggers    []string `json:"triggers"`
	Status      Status   `json:"status"`
	// Failed are the outputs that failed in the last run ("step 2
	// stage: device answered: ..."), for the page to show.
	Failed []string `json:"failed,omitempty"`
}

// List is GET /api/scenes: the scenes, their states, and the last load.
type List struct {
	Dir       string    `json:"dir"`
	LoadedAt  time.Time `json:"loaded_at"`
	LoadError string    `json:"load_error,omitempty"`
	Scenes    []Summary `json:"scenes"`
}

// Detail is GET /api/scenes/{name}.
type Detail struct {
	Scene   *Scene     `json:"scene"`
	Status  Status     `json:"status"`
	LastRun *RunRecord `json:"last_run,omitempty"`
}

// FireReply answers a run request.
type FireReply struct {
	Scene   string  `json:"scene"`
	Outcome Outcome `json:"outcome"`
}

// List returns the scenes and their states.
func (e *Engine) List() List {
	set := e.set.Load()
	e.mu.Lock()
	defer e.mu.Unlock()
	l := List{Dir: e.label, LoadedAt: e.loadedAt, LoadError: e.loadErr, Scenes: []Summary{}}
	for _, sc := range set.Scenes {
		s := Summary{Name: sc.Name, Description: sc.Description, File: sc.File, Policy: sc.Policy,
			Steps: len(sc.Steps), Length: sc.Steps[len(sc.Steps)-1].At.String(), Triggers: triggerNames(e.prefix, sc)}
		if sl, ok := e.slots[sc.Name]; ok {
			s.Status = sl.status
			if sl.last != nil {
				s.Failed = sl.last.FailedTargets()
			}
		}
		l.Scenes = append(l.Scenes, s)
	}
	return l
}

// Get returns one scene, its state and its last run.
func (e *Engine) Get(name string) (Detail, bool) {
	sc, ok := e.set.Load().Get(name)
	if !ok {
		return Detail{}, false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	d := Detail{Scene: sc}
	if sl, ok := e.slots[name]; ok {
		d.Status = sl.status
		if sl.last != nil {
			rec := *sl.last
			rec.Steps, rec.OnCancel = copyRecords(sl.last.Steps), copyRecords(sl.last.OnCancel)
			d.LastRun = &rec
		}
	}
	return d, true
}

func triggerNames(prefix string, sc *Scene) []string {
	out := []string{"http", "mqtt " + topic.Under(prefix, topic.SceneRun(sc.Name))}
	for _, t := range sc.Triggers {
		switch {
		case t.MQTT != "":
			out = append(out, "mqtt "+t.MQTT)
		case t.Event != "":
			out = append(out, "event "+t.Event)
		case t.Button != "":
			out = append(out, "button "+t.Button)
		case t.Daily != "":
			out = append(out, "daily "+t.Daily)
		case t.Cron != "":
			out = append(out, "cron "+t.Cron)
		}
	}
	return out
}

// Routes registers the scene API: reading and firing needs the crew
// role, reloading the files the admin role.
func (e *Engine) Routes(r *httpapi.Router) {
	r.HandleFunc("GET /api/scenes", httpapi.Crew, func(w http.ResponseWriter, _ *http.Request) {
		httpapi.WriteJSON(w, http.StatusOK, e.List())
	})
	r.HandleFunc("GET /api/scenes/{name}", httpapi.Crew, func(w http.ResponseWriter, req *http.Request) {
		d, ok := e.Get(req.PathValue("name"))
		if !ok {
			httpapi.Error(w, http.StatusNotFound, fmt.Sprintf("no scene named %q; GET /api/scenes lists them", req.PathValue("name")))
			return
		}
		httpapi.WriteJSON(w, http.StatusOK, d)
	})
	r.HandleFunc("POST /api/scenes/{name}/run", httpapi.Crew, e.handleRun)
	r.HandleFunc("POST /api/scenes/{name}/cancel", httpapi.Crew, func(w http.ResponseWriter, req *http.Request) {
		name := req.PathValue("name")
		stopped, err := e.Cancel(name, "http")
		if err != nil {
			writeEngineErr(w, err)
			return
		}
		httpapi.WriteJSON(w, http.StatusOK, map[string]any{"scene": name, "cancelled": stopped})
	})
	r.HandleFunc("POST /api/scenes/reload", httpapi.Admin, func(w http.ResponseWriter, _ *http.Request) {
		if err := e.Reload(); err != nil {
			httpapi.WriteJSON(w, http.StatusUnprocessableEntity, map[string]any{
				"error": "scene files refused; the previous scenes are still in use", "problems": errLines(err)})
			return
		}
		httpapi.WriteJSON(w, http.StatusOK, map[string]any{"scenes": e.set.Load().Names()})
	})
}

// handleRun fires a scene; a body, if any, must be JSON and is the payload
// passthrough publish steps send on.
func (e *Engine) handleRun(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, int64(e.cfg.maxPayload())))
	if err != nil {
		httpapi.Error(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", e.cfg.maxPayload()))
		return
	}
	if err := e.checkPayload(body, true); err != nil {
		httpapi.Error(w, http.StatusBadRequest, err.Error())
		return
	}
	name := req.PathValue("name")
	out, err := e.Fire(name, "http", body)
	if err != nil {
		writeEngineErr(w, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusAccepted, FireReply{Scene: name, Outcome: out})
}

func writeEngineErr(w http.ResponseWriter, err error) {
	var ref *Refusal
	switch {
	case errors.As(err, &ref):
		secs := int((ref.RetryAfter + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.Itoa(max(1, secs)))
		httpapi.Error(w, http.StatusTooManyRequests, err.Error())
	case errors.Is(err, ErrUnknownScene):
		httpapi.Error(w, http.StatusNotFound, err.Error())
	case errors.Is(err, ErrBusy):
		httpapi.Error(w, http.StatusConflict, err.Error())
	case errors.Is(err, ErrNotRunning):
		httpapi.Error(w, http.StatusServiceUnavailable, err.Error())
	default:
		httpapi.Error(w, http.StatusInternalServerError, err.Error())
	}
}

// Status is the scenes part of /api/status.
func (e *Engine) Status() any {
	l := e.List()
	running := []string{}
	for _, s := range l.Scenes {
		if s.Status.State == StateRunning {
			running = append(running, s.Name)
		}
	}
	return map[string]any{
		"dir": l.Dir, "loaded_at": l.LoadedAt, "load_error": l.LoadError,
		"scenes": l.Scenes, "running": running,
	}
}

// Checks are the pre-show checks: the scene files load, and every scene's
// last run went through.
func (e *Engine) Checks() []doctor.Check {
	return []doctor.Check{
		{Name: "scenes loaded", Run: func(context.Context) doctor.Result {
			l := e.List()
			switch {
			case l.LoadError != "" && len(l.Scenes) > 0:
				return doctor.Failf("fix the scene files, then POST /api/scenes/reload or send SIGHUP",
					"the last reload of %s was refused (the %d scenes loaded before are still in use): %s", l.Dir, len(l.Scenes), l.LoadError)
			case l.LoadError != "":
				return doctor.Failf("fix the scene files, then reload", "%s: %s", l.Dir, l.LoadError)
			case l.Dir == "":
				return doctor.Warnf("set scenes.dir in the config to a directory of scene files", "no scenes directory configured")
			case len(l.Scenes) == 0:
				return doctor.Warnf("add scene files (*.yaml) to "+l.Dir, "no scenes")
			}
			return doctor.Pass(fmt.Sprintf("%d scenes from %s", len(l.Scenes), l.Dir))
		}},
		{Name: "scene runs", Run: func(context.Context) doctor.Result {
			for _, s := range e.List().Scenes {
				if s.Status.State == StateFailed {
					return doctor.Warnf("look at GET /api/scenes/"+s.Name+" for the failing step and fix its output, topic or URL",
						"the last run of %s failed: %s", s.Name, s.Status.Reason)
				}
			}
			return doctor.Pass("no failed runs")
		}},
	}
}
