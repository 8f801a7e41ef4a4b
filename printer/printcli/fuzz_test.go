package printcli

import (
	"encoding/json"
	"os"
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
