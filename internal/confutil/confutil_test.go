package confutil

import (
	"strings"
	"testing"
	"time"
)

type sample struct {
	Name  string        `yaml:"name"`
	Every time.Duration `yaml:"every"`
	Items []struct {
		ID   string `yaml:"id"`
		Size int    `yaml:"size"`
	} `yaml:"items"`
	Named map[string]struct {
		Pin string `yaml:"pin"`
	} `yaml:"named"`
}

func TestDecodeErrors(t *testing.T) {
	cases := []struct {
		name, src, want string
	}{
		{"unknown top key", "name: a\nnmae: b\n", `f.yaml:2: unknown key "nmae"; expected one of: every, items, name, named`},
		{"unknown nested in list", "items:\n  - id: x\n    szie: 3\n", `f.yaml:3: unknown key "szie" in items[0]; expected one of: id, size`},
		{"unknown in map value", "named:\n  lamp:\n    pn: GPIO17\n", `f.yaml:3: unknown key "pn" in named.lamp; expected one of: pin`},
		{"wrong type", "items:\n  - size: big\n", `f.yaml:2: "big" is text, expected a whole number`},
		{"bad duration", "every: soon\n", `f.yaml:1: "soon" is text, expected a duration such as 500ms, 1.5s or 20m`},
		{"syntax", "name: [a\n", `f.yaml:1: YAML syntax:`},
		{"not a mapping", "- a\n- b\n", `f.yaml:1: the file must be a mapping`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var s sample
			_, err := Decode("f.yaml", []byte(c.src), &s)
			if err == nil {
				t.Fatalf("accepted %q", c.src)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %q\nwant it to contain %q", err, c.want)
			}
		})
	}
}

func TestProblemsLines(t *testing.T) {
	src := "name: a\nitems:\n  - id: x\n    size: -1\nnamed:\n  lamp:\n    pin: NOPE\n"
	var s sample
	d, err := Decode("f.yaml", []byte(src), &s)
	if err != nil {
		t.Fatal(err)
	}
	if s.Every != 0 || s.Items[0].Size != -1 {
		t.Fatalf("decoded %+v", s)
	}
	p := NewProblems()
	p.At("items[0]").Addf("size", "must be positive")
	p.At("named").At("lamp").Addf("pin", "no pin named %q on this board", "NOPE")
	p.Addf("missing.key", "is required")
	err = d.Err(p)
	want := "f.yaml:1: missing.key: is required\n" +
		"f.yaml:4: items[0].size: must be positive\n" +
		"f.yaml:7: named.lamp.pin: no pin named \"NOPE\" on this board"
	if err == nil || err.Error() != want {
		t.Fatalf("got\n%v\nwant\n%s", err, want)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add("name: a\nitems:\n  - id: x\n")
	f.Add("every: 1s\nnamed: {a: {pin: b}}\n")
	f.Add("&a [*a]")
	f.Fuzz(func(t *testing.T, src string) {
		var s sample
		d, err := Decode("f.yaml", []byte(src), &s)
		if err == nil {
			_ = d.Line("items[0].id")
		}
	})
}
