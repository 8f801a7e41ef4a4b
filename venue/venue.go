// Package venue joins the boxes of one venue on its broker: presence, one clock, venue-wide scenes, the venue's report.
package venue

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"fieldkit/internal/clock"
	"fieldkit/internal/confutil"
	"fieldkit/internal/deps"
	"fieldkit/internal/event"
	"fieldkit/internal/health"
	"fieldkit/internal/mqttc"
	"fieldkit/internal/topic"
)

// Conn is the venue's own MQTT connection (*mqttc.Conn), with
// <venue prefix>/box/<box> as its prefix: its status and last will, and
// its instance probe, which keeps a second box with this id out of the
// venue, live there. The venue runs it.
type Conn interface {
	Run(ctx context.Context) error
	Handle(filter string, h event.Handler) error
	Send(topic string, qos byte, retained bool, payload []byte) (wait func(context.Context) error)
	SetRetained(topic string, payload []byte)
	Connected() bool
	Status() mqttc.Status
	Instance() mqttc.Instance
}

// Scenes starts a scene at a wall-clock instant on this box's clock.
type Scenes interface {
	FireAt(name, source string, payload []byte, at time.Time) error
}

// Reporter makes this box's verified end-of-show report.
type Reporter interface {
	VenueReport(ctx context.Context, since time.Time) (*Summary, error)
}

// Synced tells whether this box's clock is disciplined by NTP.
type Synced interface{ Synced() bool }

// Deps are the venue's collaborators; Box and Conn are required.
type Deps struct {
	Box     string
	Version string
	Conn    Conn
	// Scenes may be nil (the box then refuses venue fires); Reports may
	// be nil (its report answers say so).
	Scenes  Scenes
	Reports Reporter
	Synced  Synced
	Clock   clock.Clock
	Health  *health.Registry
	Metrics prometheus.Registerer
	Log     *slog.Logger
}

// Errors of New and Relay.
var (
	ErrNoConn    = errors.New("venue: Deps.Conn is nil")
	ErrNotOnline = errors.New("this box is not connected to the venue")
	ErrBadConfig = errors.New("venue: bad config")
)

// Venue is one box's membership of a venue.
type Venue struct {
	cfg    Config
	d      Deps
	log    *slog.Logger
	clk    clock.Clock
	prefix string // the venue's
	mine   string // this box's, under the venue's
	self   mqttc.Instance

	mu        sync.Mutex
	members   map[string]*member
	ref       string // the reference the samples were taken against
	samples   []sample
	probeID   uint64
	probes    map[uint64]time.Time // sent, by id, not yet answered
	lastProbe time.Time
	answered  time.Time
	seen      map[string]time.Time // fire ids handled
	lastFire  *FireRecord
	fires     uint64
	late      uint64
	reports   map[string]chan reportAnswer

	firesTotal *prometheus.CounterVec
}

type member struct {
	p      Presence
	online bool
}

// sample is one clock exchange: offset is this box's clock minus the
// reference's.
type sample struct {
	offset, rtt time.Duration
	at          time.Time
}

// FireRecord is the last venue fire this box received.
type FireRecord struct {
	ID       string    `json:"id"`
	Scene    string    `json:"scene"`
	From     string    `json:"from"`
	Start    time.Time `json:"start"`
	Received time.Time `json:"received"`
	// LateMS is how far past the start the fire arrived (the run then
	// started at once); 0 when it came in time.
	LateMS float64 `json:"late_ms"`
	Error  string  `json:"error,omitempty"`
}

// New validates cfg and prepares the venue; nothing is sent until Run.
func New(cfg Config, d Deps) (*Venue, error) {
	if d.Conn == nil {
		return nil, ErrNoConn
	}
	p := confutil.NewProblems()
	cfg.Validate(p)
	if !p.Empty() {
		var msgs []string
		for _, pr := range p.List() {
			msgs = append(msgs, pr.Path+": "+pr.Msg)
		}
		return nil, fmt.Errorf("%w: %s", ErrBadConfig, strings.Join(msgs, "; "))
	}
	if err := checkID("box id", d.Box); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadConfig, err)
	}
	cfg = cfg.WithDefaults()
	d.Clock, d.Log = deps.Clock(d.Clock), deps.Log(d.Log)
	v := &Venue{
		cfg: cfg, d: d, log: d.Log.With("part", "venue", "venue", cfg.ID), clk: d.Clock,
		prefix: cfg.Prefix, mine: BoxPrefix(cfg.Prefix, d.Box), self: d.Conn.Instance(),
		members: map[string]*member{}, probes: map[uint64]time.Time{}, seen: map[string]time.Time{},
		reports: map[string]chan reportAnswer{},
	}
	if err := v.metrics(d.Metrics); err != nil {
		return nil, fmt.Errorf("venue: metrics: %w", err)
	}
	for _, h := range []struct {
		filter string
		f      event.Handler
	}{
		{topic.Under(v.prefix, boxesWildcard+topicPresence), v.onPresence},
		{topic.Under(v.prefix, boxesWildcard+topicStatus), v.onStatus},
		{topic.Under(v.mine, topicTimeReq), v.onTimeReq},
		{topic.Under(v.mine, topicTimeResp), v.onTimeResp},
		{topic.Under(v.prefix, topicFire), v.onFire},
		{topic.Under(v.prefix, topicSceneRun), v.onSceneRun},
		{topic.Under(v.prefix, topicReportReq), v.onReportReq},
		{topic.Under(v.prefix, boxesWildcard+topicReport), v.onReportAnswer},
	} {
		if err := d.Conn.Handle(h.filter, h.f); err != nil {
			return nil, fmt.Errorf("venue: subscribe %s: %w", h.filter, err)
		}
	}
	return v, nil
}

// BoxPrefix is where a box's venue topics live: the prefix of its venue
// connection.
func BoxPrefix(venuePrefix, box string) string { return venuePrefix + "/box/" + box }

// ClientID is the venue connection's MQTT client id: one per box id and
// venue, so that the broker itself keeps two boxes with one id apart.
func ClientID(venue, box string) string { return "fieldkit-venue-" + venue + "-" + box }

// Config is the section with its defaults filled in.
func (v *Venue) Config() Config { return v.cfg }

// Run connects to the venue, keeps this box's presence, compares its
// clock with the reference every ClockEvery, until ctx ends.
func (v *Venue) Run(ctx context.Context) error {
	connDone := make(chan error, 1)
	go func() { connDone <- v.d.Conn.Run(ctx) }()
	t := v.clk.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return <-connDone
		case <-t.C():
		}
		v.tick()
		t.Reset(v.cfg.ClockEvery)
	}
}

// tick probes the reference's clock, refreshes the presence and the
// health.
func (v *Venue) tick() {
	if v.d.Conn.Connected() {
		v.probe()
		v.publishPresence()
	}
	v.setHealth()
}

// reference is the box the venue's clocks are compared with: the lowest
// box id among the online boxes configured as reference, or, when none
// is, among every online box (online: its status says so and its
// presence has been read). "" when this box sees no one (itself
// included: it is not connected).
func (v *Venue) reference() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.referenceLocked()
}

func (v *Venue) referenceLocked() string {
	var refs, all []string
	for b, m := range v.members {
		if !m.online || m.p.Instance == "" {
			continue // offline, or its presence not read yet
		}
		all = append(all, b)
		if m.p.Reference {
			refs = append(refs, b)
		}
	}
	if v.d.Conn.Connected() && !slices.Contains(all, v.d.Box) {
		all = append(all, v.d.Box)
		if v.cfg.Reference {
			refs = append(refs, v.d.Box)
		}
	}
	if len(refs) > 0 {
		return slices.Min(refs)
	}
	if len(all) > 0 {
		return slices.Min(all)
	}
	return ""
}

// probe sends a clock probe to the reference (t1 is stamped last, right
// before the send).
func (v *Venue) probe() {
	v.mu.Lock()
	ref := v.referenceLocked()
	if ref != v.ref {
		v.ref, v.samples, v.probes = ref, nil, map[uint64]time.Time{}
	}
	if ref == "" || ref == v.d.Box {
		v.mu.Unlock()
		return
	}
	v.probeID++
	id := v.probeID
	for old := range v.probes {
		if old+Window < id {
			delete(v.probes, old) // never answered
		}
	}
	t1 := v.clk.Now()
	v.probes[id] = t1
	v.lastProbe = t1
	v.mu.Unlock()
	b, _ := json.Marshal(timeReq{ID: id, From: v.d.Box, T1: t1.UnixNano()})
	v.d.Conn.Send(topic.Under(BoxPrefix(v.prefix, ref), topicTimeReq), 0, false, b)
}

// onTimeReq answers a probe: t2 as it is read, t3 right before the send.
func (v *Venue) onTimeReq(_ context.Context, m event.Message) error {
	t2 := v.clk.Now()
	r, err := parseTimeReq(m.Payload)
	if err != nil {
		return err
	}
	resp := timeResp{ID: r.ID, From: v.d.Box, T1: r.T1, T2: t2.UnixNano()}
	to := topic.Under(BoxPrefix(v.prefix, r.From), topicTimeResp)
	resp.T3 = v.clk.Now().UnixNano()
	b, _ := json.Marshal(resp)
	v.d.Conn.Send(to, 0, false, b)
	return nil
}

// onTimeResp takes the reference's answer: with t4 as it is read,
// the reference is ahead of this box by ((t2-t1)+(t3-t4))/2, and the
// round trip, less the reference's own time, is (t4-t1)-(t3-t2).
func (v *Venue) onTimeResp(_ context.Context, m event.Message) error {
	t4 := v.clk.Now()
	r, err := parseTimeResp(m.Payload)
	if err != nil {
		return err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	t1, ok := v.probes[r.ID]
	if !ok || t1.UnixNano() != r.T1 || r.From != v.ref {
		return nil // an answer to a probe given up on, or to another reference
	}
	delete(v.probes, r.ID)
	s := exchange(t1, time.Unix(0, r.T2), time.Unix(0, r.T3), t4)
	s.at = t4
	v.samples = append(v.samples, s)
	if len(v.samples) > Window {
		v.samples = v.samples[len(v.samples)-Window:]
	}
	v.answered = t4
	return nil
}

// exchange computes one sample from the four timestamps; offset is this
// box's clock minus the reference's.
func exchange(t1, t2, t3, t4 time.Time) sample {
	theta := (t2.Sub(t1) + t3.Sub(t4)) / 2
	return sample{offset: -theta, rtt: t4.Sub(t1) - t3.Sub(t2)}
}

// estimateLocked is the sample of the window with the shortest round trip.
func (v *Venue) estimateLocked() (sample, bool) {
	if len(v.samples) == 0 {
		return sample{}, false
	}
	best := v.samples[0]
	for _, s := range v.samples[1:] {
		if s.rtt < best.rtt {
			best = s
		}
	}
	return best, true
}

func (v *Venue) publishPresence() {
	p := Presence{Box: v.d.Box, Role: v.cfg.Role, Version: v.d.Version, Instance: v.self.ID, Host: v.self.Host,
		Started: v.self.Started, Updated: v.clk.Now().UTC(), Reference: v.cfg.Reference}
	p.Health, p.Reason = v.boxHealth()
	v.mu.Lock()
	if s, ok := v.estimateLocked(); ok {
		p.OffsetMS, p.RTTMS = ms(s.offset), ms(s.rtt)
	}
	v.mu.Unlock()
	b, _ := json.Marshal(p)
	v.d.Conn.SetRetained(topic.Under(v.mine, topicPresence), b)
}

// boxHealth is the worst state among this box's parts.
func (v *Venue) boxHealth() (string, string) {
	if v.d.Health == nil {
		return string(health.OK), ""
	}
	rank := map[health.State]int{health.OK: 0, health.Starting: 1, health.Stopped: 1, health.Degraded: 2, health.Failed: 3}
	worst, reason := health.OK, ""
	for _, p := range v.d.Health.Snapshot() {
		if p.Name == "venue" {
			continue // its own view is in the presence already
		}
		if rank[p.State] > rank[worst] {
			worst, reason = p.State, p.Name+": "+p.Reason
		}
	}
	if len(reason) > 1024 {
		reason = reason[:1024]
	}
	return string(worst), strings.ToValidUTF8(reason, "?")
}

func ms(d time.Duration) *float64 {
	f := math.Round(float64(d)/1e3) / 1e3
	return &f
}

// memberBox is the box named by a topic under the venue prefix
// (<prefix>/box/<box>/...).
func (v *Venue) memberBox(t string) (string, bool) {
	rest, ok := strings.CutPrefix(t, v.prefix+"/box/")
	if !ok {
		return "", false
	}
	b, _, _ := strings.Cut(rest, "/")
	return b, idRE.MatchString(b)
}

func (v *Venue) onPresence(_ context.Context, m event.Message) error {
	b, ok := v.memberBox(m.Topic)
	if !ok {
		return nil
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(m.Payload) == 0 { // cleared
		delete(v.members, b)
		return nil
	}
	p, err := ParsePresence(m.Payload)
	if err != nil {
		return err
	}
	if p.Box != b {
		return fmt.Errorf("presence of box %q on the topic of box %q", p.Box, b)
	}
	mb := v.memberLocked(b)
	mb.p = p
	return nil
}

func (v *Venue) onStatus(_ context.Context, m event.Message) error {
	b, ok := v.memberBox(m.Topic)
	if !ok {
		return nil
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(m.Payload) == 0 {
		if mb, ok := v.members[b]; ok {
			mb.online = false
		}
		return nil
	}
	v.memberLocked(b).online = string(m.Payload) == "online"
	return nil
}

func (v *Venue) memberLocked(b string) *member {
	mb, ok := v.members[b]
	if !ok {
		if len(v.members) >= 256 {
			// Any client may publish under the prefix; a venue has a
			// handful of boxes.
			for k, o := range v.members {
				if !o.online {
					delete(v.members, k)
					break
				}
			}
		}
		mb = &member{p: Presence{Box: b}}
		v.members[b] = mb
	}
	return mb
}

// Relay sends a fire of a venue-wide scene to every box of the venue,
// this one included, with the start set Lead ahead on this box's clock.
// It is what the scene engine calls for a scene with scope: venue.
func (v *Venue) Relay(scene, source string, payload []byte) error {
	if !v.d.Conn.Connected() {
		return fmt.Errorf("venue %s: %w (%s)", v.cfg.ID, ErrNotOnline, v.d.Conn.Status().Reason)
	}
	f := Fire{ID: rand.Text()[:16], Scene: scene, From: v.d.Box, Source: source,
		Start: v.clk.Now().Add(v.cfg.Lead).UTC(), Payload: json.RawMessage(nil)}
	if len(payload) > 0 {
		if json.Valid(payload) {
			f.Payload = payload
		} else {
			f.Payload, _ = json.Marshal(string(payload))
		}
	}
	b, _ := json.Marshal(f)
	// The broker's acknowledgement may come after the start on a loaded
	// broker; the fire is out by then and the boxes say how late it came,
	// so that is not a failure to report here.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := v.d.Conn.Send(topic.Under(v.prefix, topicFire), 1, false, b)(ctx); err != nil {
		return fmt.Errorf("venue %s: the fire did not reach the broker: %w", v.cfg.ID, err)
	}
	return nil
}

// onFire schedules a venue fire on this box's own clock. A box's clock is
// kept by NTP (see the README); the fire is not corrected by the offset
// measured to the reference, which is a check on that, not a clock.
func (v *Venue) onFire(_ context.Context, m event.Message) error {
	now := v.clk.Now()
	f, err := ParseFire(m.Payload)
	if err != nil {
		return err
	}
	if f.Start.Sub(now) > maxFutureStart {
		return fmt.Errorf("venue fire %s: start %s is more than %v ahead of this box's clock", f.ID, f.Start.Format(time.RFC3339Nano), maxFutureStart)
	}
	v.mu.Lock()
	if _, dup := v.seen[f.ID]; dup {
		v.mu.Unlock()
		return nil // a redelivery
	}
	for id, t := range v.seen {
		if now.Sub(t) > time.Hour || len(v.seen) > 1024 {
			delete(v.seen, id)
		}
	}
	v.seen[f.ID] = now
	v.mu.Unlock()

	rec := &FireRecord{ID: f.ID, Scene: f.Scene, From: f.From, Start: f.Start, Received: now}
	if late := now.Sub(f.Start); late > 0 {
		rec.LateMS = *ms(late)
	}
	switch {
	case v.d.Scenes == nil:
		err = errors.New("this box runs no scenes")
	default:
		var payload []byte
		if len(f.Payload) > 0 {
			payload = f.Payload
			var s string
			if json.Unmarshal(f.Payload, &s) == nil {
				payload = []byte(s)
			}
		}
		err = v.d.Scenes.FireAt(f.Scene, "venue "+f.From, payload, f.Start)
	}
	result := "ok"
	switch {
	case err != nil:
		rec.Error, result = err.Error(), "refused"
	case rec.LateMS > 0:
		result = "late"
		v.log.Warn("venue fire arrived after its start; started at once", "scene", f.Scene, "from", f.From, "late_ms", rec.LateMS)
	}
	v.firesTotal.WithLabelValues(result).Inc()
	v.mu.Lock()
	v.lastFire = rec
	v.fires++
	if rec.LateMS > 0 {
		v.late++
	}
	v.mu.Unlock()
	if err != nil {
		return fmt.Errorf("box %s: venue scene %q: %w", v.d.Box, f.Scene, err)
	}
	return nil
}

// onSceneRun is the venue's systems asking for a venue scene without a
// start: the reference alone stamps it and fires, so that it goes out
// once.
func (v *Venue) onSceneRun(_ context.Context, m event.Message) error {
	if v.reference() != v.d.Box {
		return nil
	}
	rest := strings.TrimPrefix(m.Topic, v.prefix+"/scene/")
	name, _, _ := strings.Cut(rest, "/")
	if err := checkID("scene", name); err != nil {
		return err
	}
	return v.Relay(name, "venue "+m.Topic, m.Payload)
}

// FireRecord is the last venue fire this box received, nil before one.
func (v *Venue) LastFire() *FireRecord {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.lastFire == nil {
		return nil
	}
	r := *v.lastFire
	return &r
}
