package nut

import (
	"strings"
)

// Status is a parsed ups.status: the space-separated flags a driver sets
// (NUT's developer guide, "ups.status"). Unknown flags are kept in Other.
type Status struct {
	OL      bool // on line: fed from mains
	OB      bool // on battery
	LB      bool // low battery: the UPS's own verdict, the one upsmon shuts down on
	HB      bool // high battery
	RB      bool // the battery needs replacing
	CHRG    bool // charging
	DISCHRG bool // discharging
	BYPASS  bool // load fed straight from mains, without battery protection
	CAL     bool // runtime calibration in progress
	OFF     bool // output off
	OVER    bool // overloaded
	TRIM    bool // trimming an over-voltage
	BOOST   bool // boosting an under-voltage
	FSD     bool // forced shutdown in progress (set by upsmon)
	Other   []string
}

// maxFlags bounds how many words of a status are looked at; a real one
// has a handful, so a longer one is garbage.
const maxFlags = 32

// ParseStatus reads a ups.status value. Flags are case-sensitive upper
// case, as upsd sends them; repeated flags are harmless.
func ParseStatus(s string) Status {
	var st Status
	for i, f := range strings.Fields(s) {
		if i >= maxFlags {
			break
		}
		switch f {
		case "OL":
			st.OL = true
		case "OB":
			st.OB = true
		case "LB":
			st.LB = true
		case "HB":
			st.HB = true
		case "RB":
			st.RB = true
		case "CHRG":
			st.CHRG = true
		case "DISCHRG":
			st.DISCHRG = true
		case "BYPASS":
			st.BYPASS = true
		case "CAL":
			st.CAL = true
		case "OFF":
			st.OFF = true
		case "OVER":
			st.OVER = true
		case "TRIM":
			st.TRIM = true
		case "BOOST":
			st.BOOST = true
		case "FSD":
			st.FSD = true
		default:
			st.Other = append(st.Other, f)
		}
	}
	return st
}

// OnBattery is true while the load runs from the battery: OB, or
// DISCHRG without OL (some drivers set only the latter).
func (s Status) OnBattery() bool { return s.OB || (s.DISCHRG && !s.OL) }

// OnMains is true while the UPS is fed from mains and not draining its
// battery: the time it would last is not a countdown.
func (s Status) OnMains() bool { return s.OL && !s.OB && !s.DISCHRG }
