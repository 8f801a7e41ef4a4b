package cue

import (
	"context"
	"testing"
	"time"
)

func TestParseLead(t *testing.T) {
	for in, want := range map[string]Lead{"auto": {Auto: true}, "120ms": {Fixed: 120 * time.Millisecond}, " 0s ": {}, "2s": {Fixed: 2 * time.Second}} {
		got, err := ParseLead(in)
		if err != nil || got != want {
			t.Errorf("%q: %v %v, want %v", in, got, err, want)
		}
		if back, err := ParseLead(got.String()); err != nil || back != got {
			t.Errorf("%q: round trip %v %v", in, back, err)
		}
	}
	for _, in := range []string{"", "Auto", "-1ms", "3s", "soon", "120"} {
		if _, err := ParseLead(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

func FuzzParseLead(f *testing.F) {
	for _, s := range []string{"auto", "120ms", "1.5s", "-0s", "9999999999h", "", "1e3ms"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseLead(s)
		if err != nil {
			return
		}
		if !l.Auto && (l.Fixed < 0 || l.Fixed > MaxLead) {
			t.Fatalf("%q: %v out of range", s, l.Fixed)
		}
		if back, err := ParseLead(l.String()); err != nil || back != l {
			t.Fatalf("%q: round trip %v %v", s, back, err)
		}
	})
}

type outcomes []Outcome

func (o *outcomes) Report(_ string, x Outcome) { *o = append(*o, x) }

// The step context carries both the planned time and the reporter.
func TestWithStep(t *testing.T) {
	at := time.Unix(100, 0)
	var got outcomes
	ctx := WithStep(context.Background(), at, &got)
	if !Planned(ctx).Equal(at) || ReporterOf(ctx) == nil {
		t.Fatal("step context lost its values")
	}
	Report(ReporterOf(ctx), "lamp", Confirmed, at, "")
	Report(ReporterOf(context.Background()), "lamp", Failed, at, "nobody hears this")
	if len(got) != 1 || got[0].Status != Confirmed {
		t.Fatalf("%+v", got)
	}
	if p := Planned(WithPlanned(context.Background(), at)); !p.Equal(at) {
		t.Fatal(p)
	}
}
