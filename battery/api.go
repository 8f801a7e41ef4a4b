package battery

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"fieldkit/drivers/power"
	"fieldkit/internal/doctor"
	"fieldkit/internal/httpapi"
)

// Routes registers GET /api/batteries and GET /api/batteries/{rig}.
func (w *Watch) Routes(rt *httpapi.Router) {
	rt.HandleFunc("GET /api/batteries", httpapi.Crew, func(rw http.ResponseWriter, r *http.Request) {
		httpapi.WriteJSON(rw, http.StatusOK, map[string]any{"batteries": w.States()})
	})
	rt.HandleFunc("GET /api/batteries/{rig}", httpapi.Crew, func(rw http.ResponseWriter, r *http.Request) {
		name := r.PathValue("rig")
		for _, rg := range w.rigs {
			if rg.cfg.Name == name {
				httpapi.WriteJSON(rw, http.StatusOK, rg.snapshot())
				return
			}
		}
		httpapi.Error(rw, http.StatusNotFound, fmt.Sprintf("no battery rig named %q", name))
	})
}

// Checks is the pre-show gate: it fails when any rig is at or below its
// warn level, stale, or unreadable.
func (w *Watch) Checks() []doctor.Check {
	if len(w.rigs) == 0 {
		return nil
	}
	return []doctor.Check{{Name: "batteries", Run: w.check}}
}

func (w *Watch) check(ctx context.Context) doctor.Result {
	var bad, warn, ok []string
	for _, r := range w.rigs {
		st, lvl := r.snapshot(), r.currentLevel()
		// Outside the agent (firmware-agent doctor) nothing has polled
		// yet: take one reading now.
		if st.Updated == nil && r.src != nil && !w.running.Load() {
			var err error
			st, lvl, err = r.readOnce(ctx)
			if err != nil {
				bad = append(bad, fmt.Sprintf("%s: cannot read (%v)", r.cfg.Name, err))
				continue
			}
		}
		switch {
		case st.Updated == nil && st.Error != "":
			bad = append(bad, fmt.Sprintf("%s: cannot read (%s)", r.cfg.Name, st.Error))
		case st.Updated == nil:
			warn = append(warn, fmt.Sprintf("%s: no reading yet", r.cfg.Name))
		case st.Stale:
			bad = append(bad, fmt.Sprintf("%s: no reading for %s", r.cfg.Name, w.d.Clock.Since(*st.Updated).Round(time.Second)))
		case lvl >= power.Warn:
			bad = append(bad, fmt.Sprintf("%s: %s (%s)", r.cfg.Name, lvl, describe(st)))
		default:
			ok = append(ok, fmt.Sprintf("%s %s", r.cfg.Name, describe(st)))
		}
	}
	switch {
	case len(bad) > 0:
		return doctor.Failf("swap or charge the packs named before going live; for a rig that cannot be read, check its cable, address or broker topic",
			"%s", strings.Join(append(bad, warn...), "; "))
	case len(warn) > 0:
		return doctor.Warnf("wait for the devices to report (MQTT rigs report on their own schedule) and run the check again",
			"%s", strings.Join(warn, "; "))
	}
	return doctor.Pass(strings.Join(ok, "; "))
}

func describe(st State) string {
	var parts []string
	if st.Percent != nil {
		parts = append(parts, fmt.Sprintf("%.0f %%", *st.Percent))
	}
	if st.TTES != nil {
		parts = append(parts, fmt.Sprintf("%s left", (time.Duration(*st.TTES)*time.Second).Round(time.Minute)))
	}
	if st.Volts != nil {
		parts = append(parts, fmt.Sprintf("%.2f V", *st.Volts))
	}
	if len(parts) == 0 {
		return "no charge reading"
	}
	return strings.Join(parts, ", ")
}

func (r *rig) currentLevel() power.Level {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.level
}

// readOnce takes a single reading with a fresh estimator: enough to judge
// charge and cell voltage, not time to empty.
func (r *rig) readOnce(ctx context.Context) (State, power.Level, error) {
	smp, err := r.src.Poll(ctx)
	if err != nil {
		return State{}, power.Unknown, err
	}
	est, err := power.NewEstimator(power.Options{Pack: r.pack, Tau: r.cfg.Tau})
	if err != nil {
		return State{}, power.Unknown, err
	}
	e := est.Update(smp)
	lvl, _ := power.NewAlarm(r.th).Update(e)
	at := smp.At
	return State{Rig: r.cfg.Name, Percent: round(e.Percent, 1), Volts: round(e.Volts, 2), Level: lvl.String(),
		Source: r.cfg.Source, Updated: &at}, lvl, nil
}
