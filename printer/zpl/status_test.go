package zpl

import (
	"errors"
	"strings"
	"testing"

	"fieldkit/printer/status"
)

// hs builds a ~HS reply from the interesting flags.
func hs(paperOut, pause, headUp, ribbonOut, overTemp string) string {
	return "\x02030," + paperOut + "," + pause + ",1245,000,0,0,0,000,0,0," + overTemp + "\x03\r\n" +
		"\x02001,0," + headUp + "," + ribbonOut + ",0,2,4,0,00000000,1,000\x03\r\n" +
		"\x021234,0\x03\r\n"
}

func TestParseHostStatus(t *testing.T) {
	tests := []struct {
		name  string
		reply string
		want  status.State
		flags string
	}{
		{"ready", hs("0", "0", "0", "0", "0"), status.Ready, ""},
		{"paper out", hs("1", "0", "0", "0", "0"), status.PaperOut, "paper out"},
		{"paused", hs("0", "1", "0", "0", "0"), status.Offline, "paused"},
		{"head open and paused", hs("0", "1", "1", "0", "0"), status.CoverOpen, "paused,head open"},
		{"ribbon out", hs("0", "0", "0", "1", "0"), status.PaperOut, "ribbon out"},
		{"over temperature", hs("0", "0", "0", "0", "1"), status.Error, "head over temperature"},
		{"no trailing CRLF", strings.TrimSuffix(hs("0", "0", "0", "0", "0"), "\r\n"), status.Ready, ""},
	}
	for _, tt := range tests {
		r, err := ParseHostStatus([]byte(tt.reply))
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if r.State != tt.want || strings.Join(r.Flags, ",") != tt.flags {
			t.Errorf("%s: %v, want %v (%s)", tt.name, r, tt.want, tt.flags)
		}
	}
}

func TestParseHostStatusGarbage(t *testing.T) {
	good := hs("0", "0", "0", "0", "0")
	for _, bad := range []string{
		"",
		"garbage",
		good[:40],
		strings.Replace(good, "1245", "12a5", 1),
		strings.Replace(good, ",1245", "", 1),
		strings.Replace(good, "\x03", "", 1),
		"xx" + good,
		good + "junk",
		"\x02\x03\x02\x03\x02\x03",
	} {
		r, err := ParseHostStatus([]byte(bad))
		if !errors.Is(err, ErrBadReply) || r.State != status.Error {
			t.Errorf("%q: %v, %v; want error state and ErrBadReply", bad, r, err)
		}
	}
}

func TestComplete(t *testing.T) {
	good := hs("0", "0", "0", "0", "0")
	for i := 0; i < len(good)-2; i++ {
		if n := Complete([]byte(good[:i])); n != 0 {
			t.Fatalf("partial reply of %d bytes reported complete (%d)", i, n)
		}
	}
	if n := Complete([]byte(good + "\x02next")); n != len(good) {
		t.Fatalf("Complete = %d, want %d", n, len(good))
	}
	if p := Probes(); len(p) != 1 || string(p[0].Query) != "~HS" {
		t.Fatal("probes")
	}
}

func FuzzParseHostStatus(f *testing.F) {
	f.Add([]byte(hs("0", "0", "0", "0", "0")))
	f.Add([]byte(hs("1", "1", "1", "1", "1")))
	f.Add([]byte("\x02\x03\x02\x03\x02\x03"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseHostStatus(b)
		if err != nil && r.State != status.Error {
			t.Fatalf("bad reply reads as %v", r.State)
		}
		if n := Complete(b); n < 0 || n > len(b) {
			t.Fatalf("Complete = %d of %d", n, len(b))
		}
	})
}
