package scenes

import (
	"errors"
	"testing"
	"time"
)

const venueScene = `name: open
scope: venue
steps:
  - {at: 0s, target: a, do: "on"}
  - {at: 1s, target: b, do: "on"}
`

type relayRec struct {
	got []string
	err error
}

func (r *relayRec) Relay(scene, source string, _ []byte) error {
	r.got = append(r.got, scene+" from "+source)
	return r.err
}

func TestFireAtStartsAtTheInstant(t *testing.T) {
	r := newRig(t, map[string]string{"open.yaml": venueScene})
	at := t0.Add(200 * time.Millisecond)
	if out, err := r.e.FireAt("open", "venue:box2", nil, at); err != nil || out != Started {
		t.Fatalf("FireAt: %v %v", out, err)
	}
	r.advance(t, 1, 199*time.Millisecond)
	if n := len(r.rec.all()); n != 0 {
		t.Fatalf("%d applies before the start instant", n)
	}
	r.clk.Advance(time.Millisecond)
	got := r.waitApplied(t, 1)
	if !got[0].at.Equal(at) {
		t.Fatalf("step 1 at %v, want %v", got[0].at, at)
	}
	r.advance(t, 1, time.Second)
	got = r.waitApplied(t, 2)
	if !got[1].at.Equal(at.Add(time.Second)) {
		t.Fatalf("step 2 at %v, want %v", got[1].at, at.Add(time.Second))
	}
	waitFor(t, "done", func() bool { return r.state("open").State == StateDone })
	d, _ := r.e.Get("open")
	if d.LastRun.StartAt == nil || !d.LastRun.StartAt.Equal(at) || d.LastRun.StartLateUS != nil {
		t.Fatalf("record start_at %v late %v", d.LastRun.StartAt, d.LastRun.StartLateUS)
	}
	if p := d.LastRun.Steps[0].Planned; p == nil || !p.Equal(at) {
		t.Fatalf("planned %v, want %v", p, at)
	}
}

func TestFireAtTooLateStartsAtOnceAndSaysSo(t *testing.T) {
	r := newRig(t, map[string]string{"open.yaml": venueScene})
	at := t0.Add(-30 * time.Millisecond)
	if _, err := r.e.FireAt("open", "venue:box2", nil, at); err != nil {
		t.Fatal(err)
	}
	got := r.waitApplied(t, 1)
	if !got[0].at.Equal(t0) {
		t.Fatalf("late run's first step at %v, want at once (%v)", got[0].at, t0)
	}
	d, _ := r.e.Get("open")
	if d.LastRun.StartLateUS == nil || *d.LastRun.StartLateUS != 30000 {
		t.Fatalf("start_late_us = %v, want 30000", d.LastRun.StartLateUS)
	}
}

func TestVenueScopeRelays(t *testing.T) {
	v := &relayRec{}
	r := newRig(t, map[string]string{"open.yaml": venueScene}, func(d *Deps) { d.Venue = v })
	out, err := r.e.Fire("open", "http", nil)
	if err != nil || out != Relayed {
		t.Fatalf("Fire: %v %v", out, err)
	}
	if len(v.got) != 1 || v.got[0] != "open from http" {
		t.Fatalf("relayed %v", v.got)
	}
	if n := len(r.rec.all()); n != 0 {
		t.Fatalf("a relayed fire ran %d steps here directly", n)
	}
	v.err = errors.New("venue link down")
	if _, err := r.e.Fire("open", "http", nil); !errors.Is(err, ErrVenue) {
		t.Fatalf("a relay that failed: %v, want ErrVenue", err)
	}
}

func TestScopeValidated(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"x.yaml": "name: x\nscope: hall\nsteps:\n  - {at: 0s, target: a, do: \"on\"}\n"})
	_, err := New(Config{Dir: dir}, Deps{Targets: newTargets(&recorder{}, "a"), Log: quietLog()})
	if err == nil {
		t.Fatal("scope: hall accepted")
	}
}
