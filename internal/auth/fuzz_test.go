package auth

import (
	"testing"
	"time"

	"fieldkit/internal/httpapi"
)

// FuzzSession: no cookie value other than one the agent signed yields a
// role.
func FuzzSession(f *testing.F) {
	s, _, err := OpenStore(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	a := New(s, Options{Required: true})
	good, _ := a.encodeSession(session{Role: "crew", Name: "Ana", Exp: 4102444800})
	f.Add(good)
	f.Add("eyJyIjoiYWRtaW4iLCJlIjo5OTk5OTk5OTk5fQ.AAAA")
	f.Add(".")
	f.Fuzz(func(t *testing.T, v string) {
		_, role, err := a.decodeSession(v, time.Unix(1700000000, 0))
		if err == nil && v != good {
			t.Fatalf("%q accepted as %v", v, role)
		}
		if err != nil && role != httpapi.Public {
			t.Fatalf("error with role %v", role)
		}
	})
}
