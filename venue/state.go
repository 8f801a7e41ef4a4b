package venue

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"fieldkit/internal/doctor"
	"fieldkit/internal/event"
	"fieldkit/internal/health"
	"fieldkit/internal/httpapi"
	"fieldkit/internal/mqttc"
	"fieldkit/internal/topic"
)

// State is GET /api/venue and the venue section of /api/status.
type State struct {
	Venue     string `json:"venue"`
	Box       string `json:"box"`
	Prefix    string `json:"prefix"`
	Connected bool   `json:"connected"`
	Reason    string `json:"reason,omitempty"`
	// Duplicate is another box with this box's id in the venue.
	Duplicate *mqttc.Duplicate `json:"duplicate,omitempty"`
	Reference string           `json:"reference"`
	// OffsetMS is this box's clock minus the reference's (positive:
	// ahead), from the sample of the window with the shortest RTTMS.
	OffsetMS    *float64      `json:"offset_ms,omitempty"`
	RTTMS       *float64      `json:"rtt_ms,omitempty"`
	Samples     int           `json:"samples"`
	LastAnswer  time.Time     `json:"last_answer,omitzero"`
	MaxOffsetMS float64       `json:"max_offset_ms"`
	LeadMS      float64       `json:"lead_ms"`
	Members     []MemberState `json:"members"`
	LastFire    *FireRecord   `json:"last_fire,omitempty"`
	Fires       uint64        `json:"fires"`
	LateFires   uint64        `json:"late_fires"`
}

// MemberState is one box of the venue as this box sees it.
type MemberState struct {
	Presence
	Online      bool `json:"online"`
	IsReference bool `json:"is_reference"`
	Self        bool `json:"self"`
}

// State is the venue now, as this box sees it.
func (v *Venue) State() State {
	cs := v.d.Conn.Status()
	st := State{Venue: v.cfg.ID, Box: v.d.Box, Prefix: v.prefix, Connected: cs.Connected, Reason: cs.Reason,
		Duplicate: cs.Duplicate, MaxOffsetMS: *ms(v.cfg.MaxOffset), LeadMS: *ms(v.cfg.Lead), Members: []MemberState{}}
	v.mu.Lock()
	defer v.mu.Unlock()
	st.Reference = v.referenceLocked()
	if st.Reference == v.d.Box {
		zero := 0.0
		st.OffsetMS = &zero
	} else if s, ok := v.estimateLocked(); ok && v.ref == st.Reference {
		st.OffsetMS, st.RTTMS = ms(s.offset), ms(s.rtt)
	}
	st.Samples, st.LastAnswer = len(v.samples), v.answered
	for b, m := range v.members {
		e := MemberState{Presence: m.p, Online: m.online, IsReference: b == st.Reference, Self: b == v.d.Box}
		if e.IsReference {
			e.OffsetMS, e.RTTMS = nil, nil
		}
		st.Members = append(st.Members, e)
	}
	slices.SortFunc(st.Members, func(a, b MemberState) int { return cmp.Compare(a.Box, b.Box) })
	if v.lastFire != nil {
		r := *v.lastFire
		st.LastFire = &r
	}
	st.Fires, st.LateFires = v.fires, v.late
	return st
}

// Status is the venue section of /api/status.
func (v *Venue) Status() any { return v.State() }

// duplicateReason names the other box with this id, or "".
func (v *Venue) duplicateReason(cs mqttc.Status) string {
	d := cs.Duplicate
	switch {
	case d == nil:
		return ""
	case d.Refused:
		return fmt.Sprintf("box id %q is already in venue %s, used by another box (%s); this box stays out of the venue; give each box its own box: id",
			v.d.Box, v.cfg.ID, d.Other)
	default:
		return fmt.Sprintf("another box (%s) with box id %q tried to join venue %s at %s; give each box its own box: id",
			d.Other, v.d.Box, v.cfg.ID, d.Seen.Format(time.RFC3339))
	}
}

// clockVerdict judges this box's clock against the reference.
func (v *Venue) clockVerdict() doctor.Result {
	st := v.State()
	fix := fmt.Sprintf("check this box's time sync: `chronyc tracking` (or `timedatectl timesync-status`) must show it synchronised with a small offset; every box of the venue should sync from one source, such as the reference box %s (README: Venue time source); then check the reference's own sync the same way", st.Reference)
	switch {
	case !st.Connected:
		return doctor.Failf("check the broker address and that this box's id is its own", "not connected to venue %s: %s", v.cfg.ID, st.Reason)
	case st.Reference == v.d.Box:
		if v.d.Synced != nil && !v.d.Synced.Synced() {
			return doctor.Warnf("run `chronyc tracking` (or `timedatectl timesync-status`) on this box; give it an NTP source or an RTC, or make a box that has one the reference",
				"this box is venue %s's time reference, but the kernel says its clock is not synchronised", v.cfg.ID)
		}
		return doctor.Pass(fmt.Sprintf("this box is venue %s's time reference", v.cfg.ID))
	case st.OffsetMS == nil:
		return doctor.Warnf("wait a few seconds; if it stays, check that the reference box "+st.Reference+" is running and on the broker",
			"no clock answer from the reference %s yet", st.Reference)
	}
	off := *st.OffsetMS
	if math.Abs(off) > st.MaxOffsetMS {
		dir := "ahead of"
		if off < 0 {
			dir = "behind"
		}
		return doctor.Failf(fix, "clock %.1f ms %s the reference %s (round trip %.1f ms); the limit is %.0f ms: venue scenes will not land together",
			math.Abs(off), dir, st.Reference, *st.RTTMS, st.MaxOffsetMS)
	}
	return doctor.Pass(fmt.Sprintf("clock within %.1f ms of the reference %s (round trip %.1f ms)", off, st.Reference, *st.RTTMS))
}

// Checks are the venue's pre-show checks.
func (v *Venue) Checks() []doctor.Check {
	return []doctor.Check{
		{Name: "venue members", Run: func(context.Context) doctor.Result {
			cs := v.d.Conn.Status()
			if r := v.duplicateReason(cs); r != "" {
				return doctor.Failf("give each box of the venue its own box: id", "%s", r)
			}
			if !cs.Connected {
				return doctor.Failf("check mqtt.url and that the venue's broker is up", "not connected to venue %s: %s", v.cfg.ID, cs.Reason)
			}
			st := v.State()
			var on, off []string
			for _, m := range st.Members {
				if m.Online {
					on = append(on, m.Box)
				} else {
					off = append(off, m.Box)
				}
			}
			if len(off) > 0 {
				return doctor.Warnf("start the boxes that are offline, or ignore this if they are not at the show",
					"venue %s: online %s; offline %s", v.cfg.ID, strings.Join(on, ", "), strings.Join(off, ", "))
			}
			return doctor.Pass(fmt.Sprintf("venue %s: %d boxes online (%s), reference %s", v.cfg.ID, len(on), strings.Join(on, ", "), st.Reference))
		}},
		{Name: "venue clock", Run: func(context.Context) doctor.Result { return v.clockVerdict() }},
	}
}

// setHealth reports the venue part: failed on a duplicate box id,
// degraded while off the venue or off the reference's clock.
func (v *Venue) setHealth() {
	if v.d.Health == nil {
		return
	}
	cs := v.d.Conn.Status()
	if r := v.duplicateReason(cs); r != "" {
		v.d.Health.Set("venue", health.Failed, r)
		return
	}
	if !cs.Connected {
		v.d.Health.Set("venue", health.Degraded, "not connected to the venue: "+cs.Reason)
		return
	}
	if r := v.clockVerdict(); r.Status == doctor.Fail {
		v.d.Health.Set("venue", health.Degraded, r.Detail)
		return
	}
	st := v.State()
	v.d.Health.Set("venue", health.OK, fmt.Sprintf("venue %s, reference %s", v.cfg.ID, st.Reference))
}

func (v *Venue) metrics(reg prometheus.Registerer) error {
	v.firesTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fieldkit_venue_fires_total",
		Help: "Venue scene fires received, by result (ok, late: started at once after its start instant, refused).",
	}, []string{"result"})
	if reg == nil {
		return nil
	}
	est := func(f func(sample) time.Duration) func() float64 {
		return func() float64 {
			v.mu.Lock()
			defer v.mu.Unlock()
			s, ok := v.estimateLocked()
			if !ok {
				return math.NaN()
			}
			return f(s).Seconds()
		}
	}
	cs := []prometheus.Collector{
		v.firesTotal,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "fieldkit_venue_clock_offset_seconds",
			Help: "This box's clock minus the venue reference's, from the probe with the shortest round trip of the last 8 (NaN: not measured; 0 on the reference).",
		}, est(func(s sample) time.Duration { return s.offset })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "fieldkit_venue_clock_rtt_seconds",
			Help: "Round trip of the clock probe the offset comes from (NaN: not measured).",
		}, est(func(s sample) time.Duration { return s.rtt })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "fieldkit_venue_members_online",
			Help: "Boxes of the venue online, as this box sees them.",
		}, func() float64 {
			v.mu.Lock()
			defer v.mu.Unlock()
			n := 0
			for _, m := range v.members {
				if m.online {
					n++
				}
			}
			return float64(n)
		}),
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// Routes registers GET /api/venue and GET /api/venue/report.
func (v *Venue) Routes(r *httpapi.Router) {
	r.HandleFunc("GET /api/venue", httpapi.Crew, func(w http.ResponseWriter, _ *http.Request) {
		httpapi.WriteJSON(w, http.StatusOK, v.State())
	})
	r.HandleFunc("GET /api/venue/report", httpapi.Crew, func(w http.ResponseWriter, req *http.Request) {
		var since time.Time
		if s := req.URL.Query().Get("since"); s != "" {
			t, err := ParseSince(s, v.clk.Now())
			if err != nil {
				httpapi.Error(w, http.StatusBadRequest, err.Error())
				return
			}
			since = t
		}
		rep, err := v.Report(req.Context(), since)
		if err != nil {
			httpapi.Error(w, http.StatusServiceUnavailable, err.Error())
			return
		}
		httpapi.WriteJSON(w, http.StatusOK, rep)
	})
}

// ParseSince reads an RFC 3339 time or a duration back from now ("8h").
func ParseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("since=%q: expected an RFC 3339 time (2025-06-01T18:00:00Z) or a duration back from now (8h)", s)
}

// Report asks every member of the venue for its verified end-of-show
// report over MQTT and merges the answers that come within ReportWait;
// the members that did not answer are listed as missing.
func (v *Venue) Report(ctx context.Context, since time.Time) (Report, error) {
	if !v.d.Conn.Connected() {
		return Report{}, fmt.Errorf("venue %s: %w (%s)", v.cfg.ID, ErrNotOnline, v.d.Conn.Status().Reason)
	}
	id := rand.Text()[:16]
	ch := make(chan reportAnswer, 64)
	v.mu.Lock()
	v.reports[id] = ch
	known := map[string]bool{v.d.Box: true}
	online := map[string]bool{v.d.Box: true}
	for b, m := range v.members {
		known[b] = true
		if m.online {
			online[b] = true
		}
	}
	v.mu.Unlock()
	defer func() {
		v.mu.Lock()
		delete(v.reports, id)
		v.mu.Unlock()
	}()
	b, _ := json.Marshal(reportReq{ID: id, From: v.d.Box, Since: since})
	if err := v.d.Conn.Send(topic.Under(v.prefix, topicReportReq), 1, false, b)(ctx); err != nil {
		return Report{}, fmt.Errorf("venue %s: report request: %w", v.cfg.ID, err)
	}
	answers := map[string]reportAnswer{}
	t := v.clk.NewTimer(v.cfg.ReportWait)
	defer t.Stop()
wait:
	for len(answers) < len(online) {
		select {
		case a := <-ch:
			answers[a.Box] = a
			known[a.Box] = true
		case <-t.C():
			break wait
		case <-ctx.Done():
			return Report{}, ctx.Err()
		}
	}
	return merge(v.cfg.ID, v.d.Box, since, v.clk.Now().UTC(), sortedKeys(known), answers), nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// onReportReq answers a report request with this box's verified report.
func (v *Venue) onReportReq(ctx context.Context, m event.Message) error {
	req, err := parseReportReq(m.Payload)
	if err != nil {
		return err
	}
	a := reportAnswer{ID: req.ID, Box: v.d.Box}
	if v.d.Reports == nil {
		a.Error = "this box keeps no receipts"
	} else {
		rctx, cancel := context.WithTimeout(ctx, v.cfg.ReportWait)
		s, err := v.d.Reports.VenueReport(rctx, req.Since)
		cancel()
		if err != nil {
			a.Error = err.Error()
		} else {
			a.Report = s
		}
	}
	b, _ := json.Marshal(a)
	v.d.Conn.Send(topic.Under(v.mine, topicReport), 1, false, b)
	return nil
}

func (v *Venue) onReportAnswer(_ context.Context, m event.Message) error {
	b, ok := v.memberBox(m.Topic)
	if !ok {
		return nil
	}
	a, err := parseReportAnswer(m.Payload)
	if err != nil {
		return err
	}
	if a.Box != b {
		return fmt.Errorf("report of box %q on the topic of box %q", a.Box, b)
	}
	v.mu.Lock()
	ch := v.reports[a.ID]
	v.mu.Unlock()
	if ch != nil {
		select {
		case ch <- a:
		default:
		}
	}
	return nil
}
