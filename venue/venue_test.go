package venue

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"fieldkit/internal/clock"
	"fieldkit/internal/confutil"
	"fieldkit/internal/doctor"
	"fieldkit/internal/event"
	"fieldkit/internal/mqttc"
	"fieldkit/internal/topic"
)

func TestExchange(t *testing.T) {
	// The box is 80 ms ahead of the reference; 3 ms each way, 1 ms at
	// the reference.
	base := time.Unix(1_700_000_000, 0)
	t1 := base.Add(80 * time.Millisecond)                    // box clock
	t2 := base.Add(3 * time.Millisecond)                     // reference clock
	t3 := t2.Add(time.Millisecond)                           // reference clock
	t4 := base.Add(80*time.Millisecond + 7*time.Millisecond) // box clock
	s := exchange(t1, t2, t3, t4)
	if s.offset != 80*time.Millisecond || s.rtt != 6*time.Millisecond {
		t.Fatalf("offset %v rtt %v, want 80ms and 6ms", s.offset, s.rtt)
	}
	// An asymmetric path (5 ms there, 1 ms back) skews the offset by
	// half the difference: why the shortest round trip is kept.
	t2 = base.Add(5 * time.Millisecond)
	t3 = t2.Add(time.Millisecond)
	t4 = base.Add(80*time.Millisecond + 7*time.Millisecond)
	if s := exchange(t1, t2, t3, t4); s.offset != 78*time.Millisecond {
		t.Fatalf("asymmetric offset %v, want 78ms", s.offset)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{ID: "hall-a"}, ""},
		{Config{ID: "Hall A"}, "id"},
		{Config{}, "id"},
		{Config{ID: "a", Lead: 5 * time.Millisecond}, "lead"},
		{Config{ID: "a", MaxOffset: -time.Millisecond}, "max_offset"},
		{Config{ID: "a", ClockEvery: time.Hour}, "clock_every"},
		{Config{ID: "a", Prefix: "fieldkit/#"}, "prefix"},
		{Config{ID: "a", Role: "stage\x00"}, "role"},
	} {
		p := confutil.NewProblems()
		c.cfg.Validate(p)
		var paths []string
		for _, pr := range p.List() {
			paths = append(paths, pr.Path)
		}
		if c.want == "" && len(paths) > 0 || c.want != "" && !slices.Contains(paths, c.want) {
			t.Errorf("%+v: problems at %v, want %q", c.cfg, paths, c.want)
		}
	}
	d := Config{ID: "hall-a"}.WithDefaults()
	if d.Lead != 200*time.Millisecond || d.MaxOffset != 20*time.Millisecond || d.Prefix != "fieldkit/venue/hall-a" {
		t.Fatalf("defaults %+v", d)
	}
}

func TestMerge(t *testing.T) {
	answers := map[string]reportAnswer{
		"stage":  {Box: "stage", Report: &Summary{Box: "stage", Count: 2, Total: 3000, Currency: "EUR", BySKU: []SKUTotal{{SKU: "TEE", Qty: 2, Total: 3000}}}},
		"pickup": {Box: "pickup", Report: &Summary{Box: "liar", Count: 1, Total: 1500, Currency: "EUR", BySKU: []SKUTotal{{SKU: "TEE", Qty: 1, Total: 1500}}}},
		"bar":    {Box: "bar", Error: "receipts: record 7: bad signature"},
	}
	r := merge("hall-a", "stage", time.Time{}, time.Unix(0, 0), []string{"bar", "entrance", "pickup", "stage"}, answers)
	if r.Complete || !slices.Equal(r.Missing, []string{"entrance"}) || len(r.Failed) != 1 || r.Failed[0].Box != "bar" {
		t.Fatalf("missing %v failed %v complete %v", r.Missing, r.Failed, r.Complete)
	}
	if len(r.Totals) != 1 || r.Totals[0].Count != 3 || r.Totals[0].Total != 4500 {
		t.Fatalf("totals %+v", r.Totals)
	}
	if len(r.BySKU) != 1 || r.BySKU[0].Qty != 3 {
		t.Fatalf("by sku %+v", r.BySKU)
	}
	if r.Members[0].Box != "pickup" {
		t.Fatalf("a member's report is filed under the box that answered, got %q", r.Members[0].Box)
	}
}

func FuzzParseFire(f *testing.F) {
	f.Add([]byte(`{"id":"a1","scene":"open","from":"stage","start":"2026-06-01T18:00:00.25Z"}`))
	f.Add([]byte(`{"id":"a1","scene":"open","from":"stage","start":"2026-06-01T18:00:00Z","payload":{"x":1}}`))
	f.Add([]byte(`{"id":"","scene":"Open"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		fi, err := ParseFire(b)
		if err != nil {
			return
		}
		if checkID("scene", fi.Scene) != nil || fi.ID == "" || fi.Start.IsZero() {
			t.Fatalf("accepted %+v", fi)
		}
		// What is accepted survives a round trip.
		out, _ := json.Marshal(fi)
		if _, err := ParseFire(out); err != nil {
			t.Fatalf("re-encoded fire refused: %v", err)
		}
	})
}

func FuzzParsePresence(f *testing.F) {
	f.Add([]byte(`{"box":"stage","instance":"x","health":"ok","offset_ms":1.5,"rtt_ms":0.4,"started":"2026-06-01T18:00:00Z"}`))
	f.Add([]byte(`{"box":"../x"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePresence(b)
		if err != nil {
			return
		}
		if !idRE.MatchString(p.Box) {
			t.Fatalf("accepted box %q", p.Box)
		}
	})
}

func FuzzParseWire(f *testing.F) {
	f.Add([]byte(`{"id":3,"from":"pickup","t1":1,"t2":2,"t3":3}`))
	f.Add([]byte(`{"id":"r1","box":"stage","report":{"box":"stage","count":1}}`))
	f.Add([]byte(`{"id":"r1","from":"stage","since":"2026-06-01T18:00:00Z"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if r, err := parseTimeResp(b); err == nil && r.T3 < r.T2 {
			t.Fatalf("accepted t3 before t2: %+v", r)
		}
		if a, err := parseReportAnswer(b); err == nil && a.Report == nil && a.Error == "" {
			t.Fatal("accepted an empty report answer")
		}
		_, _ = parseTimeReq(b)
		_, _ = parseReportReq(b)
	})
}

// loopConn is a broker in memory for several boxes: a publish reaches
// every handler whose filter matches, retained messages are kept.
type loopBroker struct {
	mu    sync.Mutex
	conns []*loopConn
}

type loopConn struct {
	b         *loopBroker
	prefix    string
	inst      mqttc.Instance
	connected bool
	mu        sync.Mutex
	handlers  map[string][]event.Handler
}

func (b *loopBroker) conn(prefix, id string) *loopConn {
	c := &loopConn{b: b, prefix: prefix, inst: mqttc.Instance{ID: id}, connected: true, handlers: map[string][]event.Handler{}}
	b.mu.Lock()
	b.conns = append(b.conns, c)
	b.mu.Unlock()
	return c
}

func (c *loopConn) Run(ctx context.Context) error {
	c.Send(topic.Under(c.prefix, "status"), 1, true, []byte("online"))
	<-ctx.Done()
	return nil
}
func (c *loopConn) Handle(filter string, h event.Handler) error {
	c.mu.Lock()
	c.handlers[filter] = append(c.handlers[filter], h)
	c.mu.Unlock()
	return nil
}
func (c *loopConn) Send(t string, _ byte, _ bool, payload []byte) func(context.Context) error {
	c.b.mu.Lock()
	conns := slices.Clone(c.b.conns)
	c.b.mu.Unlock()
	for _, o := range conns {
		o.mu.Lock()
		var hs []event.Handler
		for f, h := range o.handlers {
			if topic.Match(f, t) {
				hs = append(hs, h...)
			}
		}
		o.mu.Unlock()
		for _, h := range hs {
			_ = h(context.Background(), event.Message{Topic: t, Payload: payload})
		}
	}
	return func(context.Context) error { return nil }
}
func (c *loopConn) SetRetained(t string, payload []byte) { c.Send(t, 0, true, payload) }
func (c *loopConn) Connected() bool                      { return c.connected }
func (c *loopConn) Status() mqttc.Status                 { return mqttc.Status{Connected: c.connected} }
func (c *loopConn) Instance() mqttc.Instance             { return c.inst }

type fireRec struct {
	mu  sync.Mutex
	got []time.Time
}

func (f *fireRec) FireAt(_, _ string, _ []byte, at time.Time) error {
	f.mu.Lock()
	f.got = append(f.got, at)
	f.mu.Unlock()
	return nil
}

// Two boxes on one fake clock, one 80 ms ahead: the probe finds the
// offset, the check fails with what to do; a relayed fire reaches both
// with the sender's start.
func TestVenueOnLoopBroker(t *testing.T) {
	fc := clock.NewFake(time.Unix(1_700_000_000, 0))
	lb := &loopBroker{}
	mk := func(box string, clk clock.Clock, ref bool, sc Scenes) *Venue {
		cfg := Config{ID: "hall-a", Reference: ref}
		v, err := New(cfg, Deps{Box: box, Conn: lb.conn(BoxPrefix("fieldkit/venue/hall-a", box), box+"-nonce"), Clock: clk, Scenes: sc})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	recA, recB := &fireRec{}, &fireRec{}
	a := mk("stage", fc, true, recA)
	b := mk("pickup", clock.Offset(fc, 80*time.Millisecond), false, recB)
	for _, v := range []*Venue{a, b} {
		v.d.Conn.(*loopConn).Run(canceled())
		v.tick()
	}
	// pickup now knows stage is the reference: probe again.
	b.tick()
	st := b.State()
	if st.Reference != "stage" || st.OffsetMS == nil || *st.OffsetMS != 80 {
		t.Fatalf("state %+v offset %v", st, deref(st.OffsetMS))
	}
	if r := b.clockVerdict(); r.Status != doctor.Fail || !strings.Contains(r.Fix, "chronyc tracking") {
		t.Fatalf("verdict %+v", r)
	}
	if r := a.clockVerdict(); r.Status != doctor.OK {
		t.Fatalf("reference verdict %+v", r)
	}
	if err := b.Relay("open", "http", []byte("not json")); err != nil {
		t.Fatal(err)
	}
	want := fc.Now().Add(80*time.Millisecond + DefaultLead)
	if len(recA.got) != 1 || len(recB.got) != 1 || !recA.got[0].Equal(want) || !recB.got[0].Equal(want) {
		t.Fatalf("fires: stage %v pickup %v, want both %v", recA.got, recB.got, want)
	}
	if lf := a.LastFire(); lf == nil || lf.From != "pickup" || lf.LateMS != 0 {
		t.Fatalf("last fire %+v", lf)
	}
}

func canceled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

func deref(f *float64) any {
	if f == nil {
		return nil
	}
	return *f
}
