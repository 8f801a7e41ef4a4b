package preflight

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"fieldkit/internal/clock"
	"fieldkit/internal/confutil"
	"fieldkit/internal/doctor"
)

type recBus struct {
	mu  sync.Mutex
	evs []Gate
}

func (b *recBus) Publish(topic string, payload []byte) {
	if topic != GateTopic {
		panic("unexpected topic " + topic)
	}
	var g Gate
	if err := json.Unmarshal(payload, &g); err != nil {
		panic(err)
	}
	b.mu.Lock()
	b.evs = append(b.evs, g)
	b.mu.Unlock()
}

func (b *recBus) opens() []bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []bool
	for _, g := range b.evs {
		out = append(out, g.Open)
	}
	return out
}

var items = Config{Items: []Item{
	{ID: "creator", Label: "Creator confirmed", Owner: "producer"},
	{ID: "coupons", Label: "Coupons staged", Owner: "host"},
}}

func newSvc(t *testing.T, dir string, cfg Config, status *doctor.Status) (*Service, *recBus) {
	t.Helper()
	bus := &recBus{}
	s, err := New(cfg, dir, Deps{
		Bus:   bus,
		Clock: clock.NewFake(time.Date(2026, 5, 1, 18, 0, 0, 0, time.UTC)),
		Checks: func() []doctor.Check {
			return []doctor.Check{{Name: "broker", Run: func(context.Context) doctor.Result {
				return doctor.Result{Status: *status, Detail: "d", Fix: "f"}
			}}}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, bus
}

// The gate opens only when every check passes and every item is signed
// off, and each change is one bus event.
func TestGate(t *testing.T) {
	st := doctor.OK
	s, bus := newSvc(t, t.TempDir(), items, &st)
	steps := []struct {
		name string
		do   func() error
		open bool
	}{
		{"first run", func() error { s.Refresh(context.Background()); return nil }, false},
		{"sign creator", func() error { return s.Sign("creator", "Ana", "") }, false},
		{"sign coupons", func() error { return s.Sign("coupons", "Ben", "code LIVE10") }, true},
		{"check warns", func() error { st = doctor.Warn; s.Refresh(context.Background()); return nil }, false},
		{"check ok", func() error { st = doctor.OK; s.Refresh(context.Background()); return nil }, true},
		{"unsign", func() error { return s.Unsign("coupons", "Ben") }, false},
		{"sign again", func() error { return s.Sign("coupons", "Ben", "") }, true},
		{"check fails", func() error { st = doctor.Fail; s.Refresh(context.Background()); return nil }, false},
		{"check ok", func() error { st = doctor.OK; s.Refresh(context.Background()); return nil }, true},
		{"reset", func() error { return s.Reset("Ana") }, false},
	}
	for _, step := range steps {
		if err := step.do(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if g := s.State().Gate; g.Open != step.open {
			t.Fatalf("%s: gate open=%v, want %v (blocking %v)", step.name, g.Open, step.open, g.Blocking)
		}
	}
	want := []bool{false, true, false, true, false, true, false, true, false}
	if got := bus.opens(); !equal(got, want) {
		t.Fatalf("gate events %v, want %v", got, want)
	}
}

func equal(a, b []bool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestAllowWarn(t *testing.T) {
	st := doctor.Warn
	cfg := Config{AllowWarn: true}
	s, _ := newSvc(t, t.TempDir(), cfg, &st)
	if !s.Refresh(context.Background()).Gate.Open {
		t.Fatal("allow_warn: a warning shut the gate")
	}
	st = doctor.Fail
	if s.Refresh(context.Background()).Gate.Open {
		t.Fatal("allow_warn: a failing check left the gate open")
	}
}

func TestSignErrors(t *testing.T) {
	st := doctor.OK
	s, _ := newSvc(t, t.TempDir(), items, &st)
	for _, tc := range []struct {
		item, by string
		want     string
	}{
		{"nope", "Ana", "no such pre-show item"},
		{"creator", "  ", "say who"},
		{"creator", strings.Repeat("x", 65), "too long"},
	} {
		err := s.Sign(tc.item, tc.by, "")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Sign(%q,%q) = %v, want %q", tc.item, tc.by, err, tc.want)
		}
	}
}

// Sign-offs survive a restart, and a torn last line is dropped.
func TestPersistedAndTornTail(t *testing.T) {
	dir := t.TempDir()
	st := doctor.OK
	s, _ := newSvc(t, dir, items, &st)
	if err := s.Sign("creator", "Ana", "ok"); err != nil {
		t.Fatal(err)
	}
	if err := s.Sign("coupons", "Ben", ""); err != nil {
		t.Fatal(err)
	}
	if err := s.Unsign("coupons", "Ben"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	path := filepath.Join(dir, LogFile)
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"at":"2026-05-01T18:00:00Z","op":"sign","ite`)
	f.Close()
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("log mode %v, want 0600", fi.Mode().Perm())
	}

	s2, _ := newSvc(t, dir, items, &st)
	m := s2.State().Manual
	if m[0].SignedBy != "Ana" || m[0].Note != "ok" || m[1].SignedBy != "" {
		t.Fatalf("after restart: %+v", m)
	}
	if err := s2.Sign("coupons", "Cy", ""); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if _, _, err := ParseLog(bytes.NewReader(b)); err != nil {
		t.Fatalf("log not clean after a torn tail was cut: %v\n%s", err, b)
	}
	if n := strings.Count(string(b), "\n"); n != 4 {
		t.Fatalf("%d lines, want 4:\n%s", n, b)
	}
}

func TestBadLineInMiddleIsError(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, LogFile), []byte("{\"op\":\"sign\",\"item\":\"a\",\"by\":\"x\"}\nnot json\n{\"op\":\"reset\",\"by\":\"x\"}\n"), 0o600)
	_, _, err := OpenLog(dir)
	if err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("err = %v, want line 2", err)
	}
}

func TestManualChecks(t *testing.T) {
	st := doctor.OK
	s, _ := newSvc(t, t.TempDir(), items, &st)
	s.Sign("creator", "Ana", "")
	rs := doctor.Run(context.Background(), s.Checks(), time.Second)
	if rs[0].Status != doctor.OK || !strings.Contains(rs[0].Detail, "Ana") {
		t.Errorf("signed item: %+v", rs[0])
	}
	if rs[1].Status != doctor.Warn || !strings.Contains(rs[1].Fix, "host") {
		t.Errorf("unsigned item: %+v", rs[1])
	}
}

func TestConfigValidate(t *testing.T) {
	c := Config{Items: []Item{{ID: "a", Label: "A", Owner: "o"}, {ID: "a", Label: "", Owner: ""}, {ID: "Bad ID", Label: "x", Owner: "y"}}}
	p := confutil.NewProblems()
	c.Validate(p)
	var got []string
	for _, pr := range p.List() {
		got = append(got, pr.Path)
	}
	want := "items[1].id items[1].label items[1].owner items[2].id"
	if strings.Join(got, " ") != want {
		t.Fatalf("problems at %v, want %s", got, want)
	}
}

func FuzzParseLog(f *testing.F) {
	f.Add([]byte("{\"at\":\"2026-05-01T18:00:00Z\",\"op\":\"sign\",\"item\":\"a\",\"by\":\"x\"}\n"))
	f.Add([]byte("{\"op\":\"reset\",\"by\":\"x\"}\n{\"op\":\"unsign\""))
	f.Add([]byte("\n\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		es, good, err := ParseLog(bytes.NewReader(b))
		if err != nil {
			return
		}
		if good > int64(len(b)) {
			t.Fatalf("good prefix %d > %d", good, len(b))
		}
		// The good prefix parses to the same entries.
		es2, good2, err := ParseLog(bytes.NewReader(b[:good]))
		if err != nil || good2 != good || len(es2) != len(es) {
			t.Fatalf("prefix reparse: %v %d/%d %d/%d", err, good2, good, len(es2), len(es))
		}
	})
}
