package battery

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"fieldkit/battery/source/nutsrc"
	"fieldkit/drivers/nut/nuttest"
	"fieldkit/internal/testutil"
)

// ups is what the simulated UPS reports.
func ups(status string, charge, runtime int) []nuttest.Var {
	return []nuttest.Var{
		{Name: "battery.charge", Value: strconv.Itoa(charge)},
		{Name: "battery.runtime", Value: strconv.Itoa(runtime)},
		{Name: "battery.voltage", Value: "26.4"},
		{Name: "ups.realpower", Value: "180"},
		{Name: "ups.status", Value: status},
	}
}

// TestUPSStatusAgainstUpsd drives the watch from a real upsd with the
// dummy-ups driver: each ups.status the UPS reports moves the level as the
// flags call for (NUT's own meanings: LB is the low-battery signal upsmon
// shuts systems down on; OL is mains; RB, OVER, BYPASS need a person).
func TestUPSStatusAgainstUpsd(t *testing.T) {
	srv := nuttest.Start(t, "rack", ups("OB DISCHRG", 60, 1800))
	host, port, _ := net.SplitHostPort(srv.Addr)
	p, _ := strconv.Atoi(port)
	const poll = 10 * time.Second
	h := start(t, Config{{Name: "rack", Source: KindNUT, Settings: &nutsrc.Config{Host: host, Port: p, UPS: "rack"}, Poll: poll, StaleAfter: time.Hour}})

	// polled waits for the poll that the last tick (or the start) set off.
	polled := func() State {
		t.Helper()
		now := h.clk.Now()
		var st State
		testutil.WaitFor(t, 5*time.Second, "a poll at "+now.String(), func() bool {
			st = h.w.States()[0]
			return st.Updated != nil && !st.Updated.Before(now)
		})
		if st.Error != "" {
			t.Fatalf("poll failed: %s\n%s", st.Error, srv.Log())
		}
		return st
	}
	next := func() State { h.tick(2, poll); return polled() }
	expect := func(step string, st State, level string, tte *int64, advice string) {
		t.Helper()
		if st.Level != level {
			t.Fatalf("%s: level %s, want %s (state %+v)", step, st.Level, level, st)
		}
		switch {
		case tte == nil && st.TTES != nil:
			t.Fatalf("%s: tte_s %d, want none (on mains nothing counts down)", step, *st.TTES)
		case tte != nil && (st.TTES == nil || *st.TTES != *tte):
			t.Fatalf("%s: tte_s %v, want %d from battery.runtime", step, st.TTES, *tte)
		}
		if got := strings.Join(st.Advice, " | "); !strings.Contains(got, advice) {
			t.Fatalf("%s: advice %q, want it to contain %q", step, got, advice)
		}
	}
	secs := func(s int64) *int64 { return &s }

	// On battery at 60 %, 30 min left: ok, and the runtime is the UPS's own.
	expect("OB DISCHRG 60%", polled(), "ok", secs(1800), "running on battery")
	// A first ok is no news, but mains being lost is.
	if a := h.nextAlert(5 * time.Second); a.Level != "ok" || len(a.Advice) != 1 || !strings.Contains(a.Advice[0], "mains lost") {
		t.Fatalf("alert %+v", a)
	}

	// The UPS's own low-battery flag at 60 %: critical at once.
	srv.Set(ups("OB LB", 60, 1800)...)
	expect("OB LB 60%", next(), "critical", secs(1800), "(LB)")
	if a := h.nextAlert(5 * time.Second); a.Level != "critical" || a.Prev != "ok" || len(a.Advice) == 0 || !strings.Contains(a.Advice[0], "LB") {
		t.Fatalf("alert %+v", a)
	}

	// 4 min left: swap, once three polls agree.
	srv.Set(ups("OB DISCHRG", 30, 240)...)
	expect("OB DISCHRG 4 min", next(), "critical", secs(240), "")
	next()
	expect("OB DISCHRG 4 min, third poll", next(), "swap", secs(240), "")

	// Mains is back and the UPS charges from 8 %: no countdown, and swap
	// falls to critical (8 % is under 10 %), confirmed.
	srv.Set(ups("OL CHRG", 8, 240)...)
	expect("OL CHRG 8%", next(), "swap", nil, "")
	next()
	expect("OL CHRG 8%, third poll", next(), "critical", nil, "")
	for _, s := range h.mq.state(t, "rack").Advice {
		t.Fatalf("advice on mains while charging: %q", s)
	}

	// 12 % is above 10 % but inside the 3-point hysteresis: still critical.
	srv.Set(ups("OL CHRG", 12, 240)...)
	for i := 0; i < 4; i++ {
		expect(fmt.Sprintf("OL CHRG 12%% poll %d", i), next(), "critical", nil, "")
	}
	// 14 % clears critical to warn (under 25 %), 29 % clears warn.
	srv.Set(ups("OL CHRG", 14, 600)...)
	next()
	next()
	expect("OL CHRG 14%", next(), "warn", nil, "")
	srv.Set(ups("OL CHRG", 27, 900)...)
	for i := 0; i < 3; i++ {
		expect("OL CHRG 27%", next(), "warn", nil, "")
	}
	srv.Set(ups("OL CHRG", 29, 900)...)
	next()
	next()
	expect("OL CHRG 29%", next(), "ok", nil, "")
	drain(h)

	// Flags that need a person: warn at once, each with what to do.
	for _, c := range []struct{ status, advice string }{
		{"OL RB", "replace the battery"},
		{"OL OVER", "unplug"},
		{"OL BYPASS", "no battery protection"},
	} {
		srv.Set(ups(c.status, 100, 3600)...)
		expect(c.status, next(), "warn", nil, c.advice)
		a := h.nextAlert(5 * time.Second)
		if a.Level != "warn" || len(a.Advice) != 1 || !strings.Contains(a.Advice[0], c.advice) {
			t.Fatalf("%s: alert %+v", c.status, a)
		}
	}
	srv.Set(ups("OL", 100, 3600)...)
	next()
	next()
	expect("OL 100%", next(), "ok", nil, "")
}

func drain(h *harness) {
	for {
		select {
		case <-h.alert.C():
		default:
			return
		}
	}
}
