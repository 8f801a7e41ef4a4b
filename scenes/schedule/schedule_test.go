package schedule

import (
	"strings"
	"testing"
	"time"
)

func TestNext(t *testing.T) {
	loc := time.UTC
	at := func(s string) time.Time {
		v, err := time.ParseInLocation("2006-01-02 15:04", s, loc)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	cases := []struct {
		expr, from, want string
	}{
		{"30 19 * * *", "2024-03-10 12:00", "2024-03-10 19:30"},
		{"30 19 * * *", "2024-03-10 19:30", "2024-03-11 19:30"}, // strictly after
		{"*/15 * * * *", "2024-03-10 12:07", "2024-03-10 12:15"},
		{"0 9-17/4 * * *", "2024-03-10 14:00", "2024-03-10 17:00"},
		{"0 0 1 * *", "2024-01-31 23:59", "2024-02-01 00:00"},
		{"0 0 29 2 *", "2024-03-01 00:00", "2028-02-29 00:00"},
		{"0 12 * * 1-5", "2024-03-09 13:00", "2024-03-11 12:00"}, // Sat → Mon
		{"0 12 * * 7", "2024-03-09 13:00", "2024-03-10 12:00"},   // 7 is Sunday
		{"0 12 13 * 5", "2024-09-01 00:00", "2024-09-06 12:00"},  // Friday or the 13th
		{"5,10 0 * * *", "2024-12-31 23:59", "2025-01-01 00:05"},
	}
	for _, c := range cases {
		s, err := Parse(c.expr)
		if err != nil {
			t.Fatalf("%q: %v", c.expr, err)
		}
		if got := s.Next(at(c.from)); !got.Equal(at(c.want)) {
			t.Errorf("%q after %s: got %s, want %s", c.expr, c.from, got.Format("2006-01-02 15:04 Mon"), c.want)
		}
	}
}

func TestNextAcrossDST(t *testing.T) {
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatalf("time zone data: %v", err)
	}
	s, err := Daily("02:30")
	if err != nil {
		t.Fatal(err)
	}
	// 2024-03-31 02:30 does not exist in Berlin: that day is skipped.
	from := time.Date(2024, 3, 30, 12, 0, 0, 0, loc)
	got := s.Next(from)
	if got.Day() != 1 || got.Month() != 4 || got.Hour() != 2 || got.Minute() != 30 {
		t.Fatalf("got %v", got)
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct{ expr, want string }{
		{"* * * *", "expected 5 fields"},
		{"60 * * * *", "minute: 60 is out of range 0-59"},
		{"* 24 * * *", "hour: 24 is out of range"},
		{"* * 0 * *", "day of month: 0 is out of range"},
		{"* * * 13 *", "month: 13 is out of range"},
		{"* * * * 8", "day of week: 8 is out of range"},
		{"5-1 * * * *", "runs backwards"},
		{"*/0 * * * *", "step \"0\""},
		{"5/2 * * * *", "a step needs a range"},
		{"a * * * *", "not a number"},
		{"1,,2 * * * *", "empty item"},
		{"0 0 30 2 *", "never fires"},
	}
	for _, c := range cases {
		_, err := Parse(c.expr)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want %q", c.expr, err, c.want)
		}
	}
	for _, d := range []string{"24:00", "7:5", "19.30", "", "-1:30", "19:60", "1930"} {
		if _, err := Daily(d); err == nil {
			t.Errorf("daily %q accepted", d)
		}
	}
	if s, err := Daily("7:05"); err != nil || s.String() != "5 7 * * *" {
		t.Errorf("daily 7:05: %v %v", s, err)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"30 19 * * *", "*/5 18-23 * * 1-5", "0 0 29 2 *", "1,2,3 */2 1-31/3 * 0,7", "* * * * *", "0 0 31 4 *"} {
		f.Add(s)
	}
	from := time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, expr string) {
		s, err := Parse(expr)
		if err != nil {
			return
		}
		n := s.Next(from)
		if n.IsZero() {
			t.Fatalf("%q parsed but never fires", expr)
		}
		if !n.After(from) || n.Second() != 0 {
			t.Fatalf("%q: next %v is not a whole minute after %v", expr, n, from)
		}
		// The next fire is itself a match: asking again moves forward.
		if m := s.Next(n); !m.IsZero() && !m.After(n) {
			t.Fatalf("%q: next after %v is %v", expr, n, m)
		}
	})
}
