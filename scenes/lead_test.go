package scenes

import (
	"context"
	"strings"
	"testing"
	"time"

	"fieldkit/drivers/cue"
)

// leadTarget is a recording output with a lead that reports its command
// confirmed at once, or failed with fail's message.
type leadTarget struct {
	recTarget
	lead    time.Duration
	failMsg string
}

func (t *leadTarget) Lead() time.Duration { return t.lead }

func (t *leadTarget) Apply(ctx context.Context, a cue.Action) error {
	if err := t.recTarget.Apply(ctx, a); err != nil {
		return err
	}
	rep := cue.ReporterOf(ctx)
	now := t.r.clk.Now()
	cue.Report(rep, t.name, cue.Sent, now, "")
	if t.failMsg != "" {
		cue.Report(rep, t.name, cue.Failed, now, t.failMsg)
	} else {
		cue.Report(rep, t.name, cue.Confirmed, now, "")
	}
	return nil
}

func leadRig(t *testing.T, files map[string]string) *rig {
	return newRig(t, files, func(d *Deps) {
		r := d.Targets["a"].(*recTarget).r
		for name, lead := range map[string]time.Duration{"slow": 150 * time.Millisecond, "mid": 40 * time.Millisecond, "fast": 0} {
			d.Targets[name] = &leadTarget{recTarget: recTarget{name: name, kind: "wled", r: r}, lead: lead}
		}
		d.Targets["bad"] = &leadTarget{recTarget: recTarget{name: "bad", kind: "shelly", r: r}, lead: 10 * time.Millisecond,
			failMsg: "device answered: Argument 'id', value 7 not found!"}
	})
}

// tick advances the fake clock a millisecond at a time, whenever the
// engine waits on it, until n applies were recorded.
func (r *rig) tick(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(r.rec.all()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d applies, want %d", len(r.rec.all()), n)
		}
		if r.clk.WaitForTimers(1, 10*time.Millisecond) {
			r.clk.Advance(time.Millisecond)
		}
	}
}

func checkSends(t *testing.T, got []applied, base time.Time, want map[string]time.Duration, order []string) {
	t.Helper()
	for i, a := range got {
		if a.target != order[i] {
			t.Errorf("send %d went to %s, want %s (all: %v)", i, a.target, order[i], got)
		}
		if w := base.Add(want[a.target]); !a.at.Equal(w) {
			t.Errorf("%s sent at +%v, want +%v", a.target, a.at.Sub(base), want[a.target])
		}
	}
}

// Each output is sent its command at the step's time less its lead,
// the longest lead first, and the run's record shows each output's
// planned landing, lead and outcome.
func TestLeadsSendAheadOfTheStep(t *testing.T) {
	r := leadRig(t, map[string]string{"show.yaml": "name: show\nsteps:\n  - {at: 1s, targets: [lamp, fast, mid, slow], do: \"on\"}\n"})
	if _, err := r.e.Fire("show", "test", nil); err != nil {
		t.Fatal(err)
	}
	r.tick(t, 4)
	checkSends(t, r.rec.all(), t0, map[string]time.Duration{"slow": 850 * time.Millisecond, "mid": 960 * time.Millisecond,
		"lamp": time.Second, "fast": time.Second}, []string{"slow", "mid", "lamp", "fast"})
	waitFor(t, "done", func() bool { return r.state("show").State == StateDone })
	d, _ := r.e.Get("show")
	outs := d.LastRun.Steps[0].Outputs
	if len(outs) != 4 {
		t.Fatalf("outputs %+v", outs)
	}
	land := t0.Add(time.Second)
	for _, o := range outs {
		if o.Planned == nil || !o.Planned.Equal(land) || o.Sent == nil || o.Error != "" {
			t.Errorf("%s: %+v", o.Output, o)
		}
		switch o.Output {
		case "lamp": // reports nothing: stays sent
			if o.Status != cue.Sent || o.LeadUS != nil || o.Confirmed != nil {
				t.Errorf("lamp: %+v", o)
			}
		case "slow":
			if o.Status != cue.Confirmed || o.LeadUS == nil || *o.LeadUS != 150000 || o.LandedUS == nil || *o.LandedUS != -150000 {
				t.Errorf("slow: %+v", o)
			}
		default:
			if o.Status != cue.Confirmed {
				t.Errorf("%s: %+v", o.Output, o)
			}
		}
	}
	if l := d.LastRun.Steps[0].LatenessUS; l == nil || *l != 0 {
		t.Errorf("lateness %v: each send was on its own time", l)
	}
}

// A step at the run's start cannot be sent ahead: every send is delayed
// by the longest lead instead, so the outputs still land together.
func TestLeadAtStartDelaysTheStep(t *testing.T) {
	r := leadRig(t, map[string]string{"go.yaml": "name: go\nsteps:\n  - {at: 0s, targets: [lamp, mid, slow], do: \"on\"}\n"})
	if _, err := r.e.Fire("go", "test", nil); err != nil {
		t.Fatal(err)
	}
	r.tick(t, 3)
	checkSends(t, r.rec.all(), t0, map[string]time.Duration{"slow": 0, "mid": 110 * time.Millisecond, "lamp": 150 * time.Millisecond},
		[]string{"slow", "mid", "lamp"})
	waitFor(t, "done", func() bool { return r.state("go").State == StateDone })
	d, _ := r.e.Get("go")
	for _, o := range d.LastRun.Steps[0].Outputs {
		if o.Planned == nil || !o.Planned.Equal(t0.Add(150*time.Millisecond)) {
			t.Errorf("%s planned %v, want the delayed landing", o.Output, o.Planned)
		}
	}
}

// An output that reports a failure fails the step and the run, with the
// device's message, and the scene list names it.
func TestFailedTargetInRunRecord(t *testing.T) {
	r := leadRig(t, map[string]string{"go.yaml": "name: go\nsteps:\n  - {at: 0s, targets: [lamp, bad], do: \"on\"}\n"})
	if _, err := r.e.Fire("go", "test", nil); err != nil {
		t.Fatal(err)
	}
	r.tick(t, 2)
	waitFor(t, "failed", func() bool { return r.state("go").State == StateFailed })
	d, _ := r.e.Get("go")
	if !strings.Contains(d.LastRun.Reason, "bad: device answered: Argument 'id', value 7 not found!") {
		t.Errorf("reason %q", d.LastRun.Reason)
	}
	var bad TargetRecord
	for _, o := range d.LastRun.Steps[0].Outputs {
		if o.Output == "bad" {
			bad = o
		}
	}
	if bad.Status != cue.Failed || !strings.Contains(bad.Error, "value 7 not found") || bad.Sent == nil {
		t.Errorf("bad: %+v", bad)
	}
	l := r.e.List()
	if len(l.Scenes) != 1 || len(l.Scenes[0].Failed) != 1 || !strings.Contains(l.Scenes[0].Failed[0], "step 1 bad: device answered") {
		t.Errorf("list %+v", l.Scenes)
	}
}
