package status

import (
	"encoding/json"
	"testing"
)

func TestNamesRoundTrip(t *testing.T) {
	for s := Unknown; s <= Error; s++ {
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		var back State
		if err := json.Unmarshal(b, &back); err != nil || back != s {
			t.Fatalf("%v → %s → %v, %v", s, b, back, err)
		}
	}
	if _, err := Parse("jammed"); err == nil {
		t.Fatal("Parse accepted an unknown name")
	}
}

func TestWorst(t *testing.T) {
	tests := []struct {
		in   []State
		want State
	}{
		{nil, Unknown},
		{[]State{Ready, Ready}, Ready},
		{[]State{Ready, PaperLow}, PaperLow},
		{[]State{Ready, Unknown}, Unknown},
		{[]State{Offline, CoverOpen, Error}, CoverOpen},
		{[]State{Offline, PaperOut, Error}, PaperOut},
		{[]State{Ready, Offline}, Offline},
	}
	for _, tt := range tests {
		var rs []Report
		for _, s := range tt.in {
			rs = append(rs, Report{State: s, Flags: []string{s.String()}})
		}
		got := Worst(rs...)
		if got.State != tt.want {
			t.Errorf("Worst(%v) = %v, want %v", tt.in, got.State, tt.want)
		}
		if len(got.Flags) != len(tt.in) {
			t.Errorf("Worst(%v) flags %v", tt.in, got.Flags)
		}
	}
	if !Ready.CanPrint() || !PaperLow.CanPrint() || Unknown.CanPrint() || PaperOut.CanPrint() {
		t.Fatal("CanPrint")
	}
}
