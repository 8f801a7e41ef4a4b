package uplink

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"fieldkit/internal/doctor"
	"fieldkit/internal/httpapi"
)

// Routes serves the uplink's status and the resume button.
func (u *Uplink) Routes(r *httpapi.Router) {
	r.HandleFunc("GET /api/receipts/uplink", httpapi.Crew, func(w http.ResponseWriter, _ *http.Request) {
		httpapi.WriteJSON(w, http.StatusOK, u.Status())
	})
	r.HandleFunc("POST /api/receipts/uplink/resume", httpapi.Admin, func(w http.ResponseWriter, _ *http.Request) {
		u.Resume()
		httpapi.WriteJSON(w, http.StatusAccepted, u.Status())
	})
}

// Backlog thresholds for the pre-show check.
const (
	WarnBacklogAge   = time.Hour
	WarnBacklogCount = 10_000
)

// Checks are the uplink's pre-show checks.
func (u *Uplink) Checks() []doctor.Check {
	return []doctor.Check{
		{Name: "receipt backlog", Run: u.checkBacklog},
		{Name: "receipt cloud reachable", Run: u.checkCloud},
	}
}

func (u *Uplink) checkBacklog(ctx context.Context) doctor.Result {
	b, err := u.l.Backlog(ctx)
	if err != nil {
		return doctor.Failf("check the agent log", "cannot read the backlog: %v", err)
	}
	age := time.Duration(0)
	if b.Count > 0 {
		age = u.d.Clock.Since(b.Oldest).Truncate(time.Second)
	}
	st := u.Status()
	detail := fmt.Sprintf("%d receipts not yet in the cloud, oldest %s", b.Count, age)
	switch {
	case st.State == Parked:
		return doctor.Failf("read the reason, fix it with the cloud team, then POST /api/receipts/uplink/resume", "%s; uplink parked: %s", detail, st.Reason)
	case b.Count >= WarnBacklogCount || age >= WarnBacklogAge:
		return doctor.Warnf("get the box online (venue Wi-Fi or a phone hotspot) so the backlog drains", "%s", detail)
	}
	return doctor.Pass(detail)
}

func (u *Uplink) checkCloud(ctx context.Context) doctor.Result {
	if u.cfg.URL == "" {
		return doctor.Warnf("set receipts.uplink.url so receipts reach the cloud", "no cloud configured: receipts stay on this box")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, u.cfg.URL, nil)
	if err != nil {
		return doctor.Failf("fix receipts.uplink.url", "%v", err)
	}
	if u.token != "" {
		req.Header.Set("Authorization", "Bearer "+u.token)
	}
	resp, err := u.client.Do(req)
	if err != nil {
		return doctor.Warnf("check the venue network; receipts are kept and sent when the link is back", "cannot reach %s: %v", u.cfg.URL, err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		return doctor.Failf("check receipts.uplink.token_file", "%s answers %s", u.cfg.URL, resp.Status)
	}
	return doctor.Pass(fmt.Sprintf("%s answers (%s)", u.cfg.URL, resp.Status))
}
