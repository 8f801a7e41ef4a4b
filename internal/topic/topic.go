// Package topic matches MQTT-style topic filters ("+" one level, "#" the
// rest); the event bus and the MQTT router share it.
package topic

import (
	"fmt"
	"strings"
)

// Match reports whether topic t matches filter f.
func Match(f, t string) bool {
	for {
		fi := strings.IndexByte(f, '/')
		ti := strings.IndexByte(t, '/')
		var fl, tl string
		if fi < 0 {
			fl = f
		} else {
			fl = f[:fi]
		}
		if ti < 0 {
			tl = t
		} else {
			tl = t[:ti]
		}
		switch {
		case fl == "#":
			return true
		case fl != "+" && fl != tl:
			return false
		}
		if fi < 0 || ti < 0 {
			// "a/#" also matches "a" (the parent level), as MQTT says.
			if fi >= 0 && ti < 0 {
				return f[fi+1:] == "#"
			}
			return fi < 0 && ti < 0
		}
		f, t = f[fi+1:], t[ti+1:]
	}
}

// ValidFilter checks an MQTT topic filter: non-empty, "#" only last and
// alone in its level, "+" alone in its level.
func ValidFilter(f string) error {
	if f == "" {
		return fmt.Errorf("empty topic filter")
	}
	levels := strings.Split(f, "/")
	for i, l := range levels {
		if strings.Contains(l, "#") && (l != "#" || i != len(levels)-1) {
			return fmt.Errorf("topic filter %q: '#' must be a whole level and the last one", f)
		}
		if strings.Contains(l, "+") && l != "+" {
			return fmt.Errorf("topic filter %q: '+' must be a whole level", f)
		}
	}
	return nil
}

// ValidName checks a topic to publish on: non-empty, no wildcards.
func ValidName(t string) error {
	if t == "" {
		return fmt.Errorf("empty topic")
	}
	if strings.ContainsAny(t, "+#") {
		return fmt.Errorf("topic %q: wildcards are not allowed in a topic to publish on", t)
	}
	return nil
}
