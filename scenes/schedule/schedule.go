// Package schedule parses the time triggers of scenes: a daily time
// ("19:30") and five-field cron expressions ("*/5 18-23 * * 1-5"), and
// computes when each fires next, minute by minute, in local time.
package schedule

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Schedule is a parsed cron expression. The zero value never fires.
type Schedule struct {
	expr   string
	minute uint64 // bits 0-59
	hour   uint32 // bits 0-23
	dom    uint32 // bits 1-31
	month  uint16 // bits 1-12
	dow    uint8  // bits 0-6, Sunday = 0
	// Cron's rule: when both day fields are restricted, a day matches if
	// either does; otherwise both must.
	domStar, dowStar bool
}

// ErrNever is returned for an expression that names no real day, such as
// 30 February.
var ErrNever = errors.New("the schedule never fires")

type field struct {
	name     string
	min, max int
}

var fields = [5]field{
	{"minute", 0, 59},
	{"hour", 0, 23},
	{"day of month", 1, 31},
	{"month", 1, 12},
	{"day of week", 0, 7}, // 7 is Sunday too
}

// Parse parses "minute hour day-of-month month day-of-week". Each field is
// "*", a number, a range "a-b", a list "a,b,c", and any of those but a
// number with a step "/n".
func Parse(expr string) (*Schedule, error) {
	parts := strings.Fields(expr)
	if len(parts) != 5 {
		return nil, fmt.Errorf("cron %q: expected 5 fields (minute hour day-of-month month day-of-week), got %d", expr, len(parts))
	}
	s := &Schedule{expr: strings.Join(parts, " ")}
	var bits [5]uint64
	for i, p := range parts {
		b, err := parseField(p, fields[i])
		if err != nil {
			return nil, fmt.Errorf("cron %q: %w", expr, err)
		}
		bits[i] = b
	}
	s.minute = bits[0]
	s.hour = uint32(bits[1])
	s.dom = uint32(bits[2])
	s.month = uint16(bits[3])
	if bits[4]&(1<<7) != 0 {
		bits[4] |= 1
	}
	s.dow = uint8(bits[4] & 0x7f)
	s.domStar = strings.HasPrefix(parts[2], "*")
	s.dowStar = strings.HasPrefix(parts[4], "*")
	if s.Next(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)).IsZero() {
		return nil, fmt.Errorf("cron %q: %w", expr, ErrNever)
	}
	return s, nil
}

// Daily returns the schedule for a local time of day "HH:MM".
func Daily(hhmm string) (*Schedule, error) {
	h, m, ok := strings.Cut(hhmm, ":")
	hv, err1 := strconv.Atoi(h)
	mv, err2 := strconv.Atoi(m)
	if !ok || len(h) == 0 || len(h) > 2 || len(m) != 2 || err1 != nil || err2 != nil || hv < 0 || hv > 23 || mv < 0 || mv > 59 {
		return nil, fmt.Errorf("daily %q: expected a time of day HH:MM such as 19:30", hhmm)
	}
	return Parse(fmt.Sprintf("%d %d * * *", mv, hv))
}

// String is the normalised expression.
func (s *Schedule) String() string { return s.expr }

func parseField(p string, f field) (uint64, error) {
	var bits uint64
	for _, item := range strings.Split(p, ",") {
		rng, stepStr, hasStep := strings.Cut(item, "/")
		lo, hi := f.min, f.max
		switch {
		case rng == "*":
			if f.name == "day of week" {
				hi = 6
			}
		case rng == "":
			return 0, fmt.Errorf("%s: empty item in %q", f.name, p)
		default:
			a, b, isRange := strings.Cut(rng, "-")
			var err error
			if lo, err = num(a, f); err != nil {
				return 0, err
			}
			hi = lo
			if isRange {
				if hi, err = num(b, f); err != nil {
					return 0, err
				}
				if hi < lo {
					return 0, fmt.Errorf("%s: range %q runs backwards", f.name, rng)
				}
			} else if hasStep {
				return 0, fmt.Errorf("%s: a step needs a range or '*' (e.g. */5 or 0-30/5), not %q", f.name, item)
			}
		}
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepStr)
			if err != nil || n < 1 || n > f.max {
				return 0, fmt.Errorf("%s: step %q must be a number from 1 to %d", f.name, stepStr, f.max)
			}
			step = n
		}
		for v := lo; v <= hi; v += step {
			bits |= 1 << uint(v)
		}
	}
	return bits, nil
}

func num(s string, f field) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || len(s) > 2 {
		return 0, fmt.Errorf("%s: %q is not a number", f.name, s)
	}
	if n < f.min || n > f.max {
		return 0, fmt.Errorf("%s: %d is out of range %d-%d", f.name, n, f.min, f.max)
	}
	return n, nil
}

// Next returns the first minute strictly after t (in t's location) that
// the schedule matches, or the zero time if there is none within eight
// years (an impossible date).
func (s *Schedule) Next(t time.Time) time.Time {
	if s == nil || s.minute == 0 {
		return time.Time{}
	}
	loc := t.Location()
	t = t.Truncate(time.Minute).Add(time.Minute)
	// Truncate works on absolute time; realign to the local minute for
	// zones with odd offsets.
	t = time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), 0, 0, loc)
	limit := t.Year() + 8
	for t.Year() <= limit {
		if s.month&(1<<uint(t.Month())) == 0 {
			t = time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, loc)
			continue
		}
		if !s.dayMatches(t) {
			t = time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, loc)
			continue
		}
		if s.hour&(1<<uint(t.Hour())) == 0 {
			next := time.Date(t.Year(), t.Month(), t.Day(), t.Hour()+1, 0, 0, 0, loc)
			if !next.After(t) { // a DST fold repeats the hour; step past it
				next = t.Add(time.Hour).Truncate(time.Hour)
			}
			t = next
			continue
		}
		if s.minute&(1<<uint(t.Minute())) == 0 {
			t = t.Add(time.Minute)
			continue
		}
		return t
	}
	return time.Time{}
}

func (s *Schedule) dayMatches(t time.Time) bool {
	d := s.dom&(1<<uint(t.Day())) != 0
	w := s.dow&(1<<uint(t.Weekday())) != 0
	if s.domStar || s.dowStar {
		return d && w
	}
	return d || w
}
