package nutsrc

import (
	"strings"
	"testing"

	"fieldkit/drivers/power"
)

func TestVerdict(t *testing.T) {
	cases := []struct {
		status  string
		mains   bool
		floor   power.Level
		advices []string // one substring per piece of advice, in order
	}{
		{"OL", true, power.Unknown, nil},
		{"OL CHRG", true, power.Unknown, nil},
		{"OB DISCHRG", false, power.Unknown, []string{"mains lost"}},
		{"OB LB", false, power.Critical, []string{"(LB)"}},
		{"OL LB", true, power.Critical, []string{"(LB)"}},
		{"FSD OB LB", false, power.SwapNow, []string{"(FSD)", "(LB)"}},
		{"OL RB", true, power.Warn, []string{"(RB)"}},
		{"OB OVER", false, power.Warn, []string{"mains lost", "(OVER)"}},
		{"OL BYPASS", true, power.Warn, []string{"(BYPASS)"}},
		{"OFF", false, power.Warn, []string{"(OFF)"}},
		{"OL RB OVER", true, power.Warn, []string{"(OVER)", "(RB)"}},
		{"", false, power.Unknown, nil},
	}
	for _, c := range cases {
		mains, floor, advice := Verdict(c.status)
		if mains != c.mains || floor != c.floor || len(advice) != len(c.advices) {
			t.Errorf("%q: mains %v floor %v advice %q; want %v %v and %d pieces", c.status, mains, floor, advice, c.mains, c.floor, len(c.advices))
			continue
		}
		for i, a := range c.advices {
			if !strings.Contains(advice[i], a) {
				t.Errorf("%q: advice %d %q lacks %q", c.status, i, advice[i], a)
			}
		}
	}
}
