package nut

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseStatus(t *testing.T) {
	cases := []struct {
		in           string
		want         Status
		onBat, mains bool
	}{
		{"OL", Status{OL: true}, false, true},
		{"OL CHRG", Status{OL: true, CHRG: true}, false, true},
		{"OB DISCHRG", Status{OB: true, DISCHRG: true}, true, false},
		{"OB LB", Status{OB: true, LB: true}, true, false},
		{"OL RB", Status{OL: true, RB: true}, false, true},
		{"OL OVER", Status{OL: true, OVER: true}, false, true},
		{"OL BYPASS", Status{OL: true, BYPASS: true}, false, true},
		{"DISCHRG", Status{DISCHRG: true}, true, false},
		{"  OB   LB FSD ", Status{OB: true, LB: true, FSD: true}, true, false},
		{"OL TRIM BOOST HB CAL OFF ALARM", Status{OL: true, TRIM: true, BOOST: true, HB: true, CAL: true, OFF: true, Other: []string{"ALARM"}}, false, true},
		{"ol", Status{Other: []string{"ol"}}, false, false},
		{"", Status{}, false, false},
	}
	for _, c := range cases {
		got := ParseStatus(c.in)
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("ParseStatus(%q) = %+v, want %+v", c.in, got, c.want)
		}
		if got.OnBattery() != c.onBat || got.OnMains() != c.mains {
			t.Errorf("%q: on battery %v on mains %v, want %v %v", c.in, got.OnBattery(), got.OnMains(), c.onBat, c.mains)
		}
	}
}

func FuzzParseStatus(f *testing.F) {
	for _, s := range []string{"OL", "OB LB", "OL CHRG RB", "OB DISCHRG OVER BYPASS", "FSD OB LB", "", " \t", strings.Repeat("X ", 100)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		st := ParseStatus(s)
		if len(st.Other) > maxFlags {
			t.Fatalf("%d unknown flags kept", len(st.Other))
		}
		if st.OnMains() && st.OnBattery() {
			t.Fatalf("%q: both on mains and on battery", s)
		}
		for _, o := range st.Other {
			if o == "" || strings.ContainsAny(o, " \t\n") {
				t.Fatalf("flag %q is not a word", o)
			}
		}
	})
}
