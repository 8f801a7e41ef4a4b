package printcli

import (
	"encoding/json"
	"flag"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
)

// FuzzParseRequest: any file either becomes a request with exactly the
// part it names, or an error; never a panic.
func FuzzParseRequest(f *testing.F) {
	for _, p := range []string{"testdata/label.json", "testdata/pickup.json"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{`{"id":"x","label":{"elements":[]}}`, `{"pickup":{}}`, `{}`, `[]`, `{"elements":1,"order":2}`, `{"label":1,"extra":2}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parseRequest("f.json", b)
		if err != nil {
			return
		}
		if len(r.Label) == 0 && len(r.Pickup) == 0 {
			t.Fatalf("%q: accepted with neither label nor pickup", b)
		}
		if len(r.Label) > 0 && !json.Valid(r.Label) || len(r.Pickup) > 0 && !json.Valid(r.Pickup) {
			t.Fatalf("%q: invalid JSON passed on", b)
		}
	})
}

// FuzzArgs: any order of flags and words parses to the same flags and
// positional words, or an error; never a panic.
func FuzzArgs(f *testing.F) {
	f.Add("--preview\x00a.json\x00out.png\x00--lang\x00zpl")
	f.Add("--lang\x00zpl\x00--bytes\x00a.json\x00--width\x00406")
	f.Add("x\x00--\x00--lang\x00y")
	f.Add("--width\x00abc")
	f.Fuzz(func(t *testing.T, joined string) {
		args := strings.Split(joined, "\x00")
		fs := flag.NewFlagSet("print", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		lang := fs.String("lang", "", "")
		fs.Int("width", 0, "")
		fs.Bool("list", false, "")
		rest, err := parseInterspersed(fs, args)
		if err != nil {
			return
		}
		if len(rest) > len(args) {
			t.Fatalf("%q: %d positional words from %d arguments", args, len(rest), len(args))
		}
		for _, w := range rest {
			if w == "--lang" && *lang == "" && !slices.Contains(args, "--") {
				t.Fatalf("%q: flag left among the words %q", args, rest)
			}
		}
	})
}
