package cue

import (
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	lv := func(n int) *int { return &n }
	cases := []struct {
		a    Action
		want string // "" = valid
	}{
		{Action{Do: On}, ""},
		{Action{Do: Pulse, For: 200 * time.Millisecond}, ""},
		{Action{Do: Pulse}, "positive 'for'"},
		{Action{Do: Blink, Period: time.Second}, "positive 'period' and 'count'"},
		{Action{Do: Level, Level: lv(101)}, "out of range"},
		{Action{Do: Level}, "needs 'level'"},
		{Action{Do: Color, Color: "#ff8800"}, ""},
		{Action{Do: Color, Color: "orange"}, "expected #rrggbb"},
		{Action{Do: Effect, Effect: "countdown", For: 30 * time.Second}, ""},
		{Action{Do: Effect, Effect: "sparkle"}, "unknown effect"},
		{Action{Do: Haptic, Pattern: "go-live"}, ""},
		{Action{Do: Haptic, Pattern: "tickle"}, "unknown haptic pattern"},
		{Action{Do: "explode"}, "unknown action"},
		{Action{}, "missing 'do'"},
	}
	for _, c := range cases {
		err := c.a.Validate()
		if c.want == "" && err != nil {
			t.Errorf("%+v: %v", c.a, err)
		}
		if c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%+v: got %v, want %q", c.a, err, c.want)
		}
	}
}

func TestPatternsAreUsableEverywhere(t *testing.T) {
	for name, p := range Patterns {
		if p.Name != name || len(p.Pulses) == 0 || len(p.Effects) == 0 || len(p.Effects) > 8 {
			t.Errorf("pattern %q is not usable on every haptic kind: %+v", name, p)
		}
		if !strings.Contains(patternNames(), name) {
			t.Errorf("pattern %q missing from the error message list", name)
		}
	}
	if got := Patterns["go-live"].Length(); got != 2*time.Second {
		t.Errorf("go-live lasts %v, want 2s (three long)", got)
	}
}

func TestParseColor(t *testing.T) {
	r, g, b, err := ParseColor("#FF8000")
	if err != nil || r != 255 || g != 128 || b != 0 {
		t.Fatalf("got %d %d %d %v", r, g, b, err)
	}
}
