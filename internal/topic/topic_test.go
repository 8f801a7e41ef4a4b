package topic

import "testing"

func TestMatch(t *testing.T) {
	cases := []struct {
		f, t string
		want bool
	}{
		{"a/b", "a/b", true},
		{"a/b", "a/c", false},
		{"a/+", "a/b", true},
		{"a/+", "a/b/c", false},
		{"a/#", "a/b/c", true},
		{"a/#", "a", true},
		{"#", "x/y", true},
		{"battery/+/alert", "battery/rig1/alert", true},
		{"battery/+/alert", "battery/rig1/state", false},
		{"a/b/c", "a/b", false},
		{"a/b", "a/b/c", false},
		{"+/+", "a/b", true},
		{"+", "", true},
	}
	for _, c := range cases {
		if got := Match(c.f, c.t); got != c.want {
			t.Errorf("Match(%q, %q) = %v, want %v", c.f, c.t, got, c.want)
		}
	}
}

func TestValidFilter(t *testing.T) {
	for _, ok := range []string{"a", "a/+/b", "#", "a/#", "+"} {
		if err := ValidFilter(ok); err != nil {
			t.Errorf("ValidFilter(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a#", "a/#/b", "a+/b", "a/b+"} {
		if err := ValidFilter(bad); err == nil {
			t.Errorf("ValidFilter(%q) accepted", bad)
		}
	}
}

func FuzzMatch(f *testing.F) {
	f.Add("a/+/#", "a/b/c")
	f.Add("#", "")
	f.Fuzz(func(t *testing.T, fl, tp string) {
		if ValidFilter(fl) != nil {
			return
		}
		if ValidName(fl) == nil && Match(fl, tp) != (fl == tp) {
			t.Fatalf("literal filter %q vs %q", fl, tp)
		}
	})
}
