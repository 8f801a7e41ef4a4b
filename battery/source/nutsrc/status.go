package nutsrc

import (
	"fieldkit/drivers/nut"
	"fieldkit/drivers/power"
)

// Verdict maps a UPS's ups.status flags onto what the battery watch does
// with them: whether the pack is draining, the least level the flags call
// for, and what the crew should do about each flag that needs a person.
func Verdict(status string) (onMains bool, floor power.Level, advice []string) {
	st := nut.ParseStatus(status)
	raise := func(l power.Level) { floor = max(floor, l) }
	if st.FSD {
		// upsmon has ordered the shutdown: the power goes in seconds.
		raise(power.SwapNow)
		advice = append(advice, "the UPS is shutting down (FSD): move its loads to another supply now")
	}
	if st.LB {
		raise(power.Critical)
		advice = append(advice, "the UPS reports a low battery (LB), the signal systems shut down on: restore its mains power or move its loads to another supply now")
	} else if st.OnBattery() {
		advice = append(advice, "the UPS is running on battery (mains lost): check its plug and the venue's breaker")
	}
	if st.OVER {
		raise(power.Warn)
		advice = append(advice, "the UPS is overloaded (OVER): unplug its least important loads now, or it may cut out")
	}
	if st.RB {
		raise(power.Warn)
		advice = append(advice, "the UPS says its battery needs replacing (RB): expect less runtime than shown and replace the battery after the show")
	}
	if st.BYPASS {
		raise(power.Warn)
		advice = append(advice, "the UPS is on bypass (BYPASS): its loads have no battery protection, so a power cut drops them; check the UPS's display")
	}
	if st.OFF {
		raise(power.Warn)
		advice = append(advice, "the UPS's output is off (OFF): its loads have no power; switch the output on")
	}
	return st.OnMains(), floor, advice
}
