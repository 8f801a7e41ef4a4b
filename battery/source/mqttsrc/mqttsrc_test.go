package mqttsrc

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"fieldkit/drivers/power"
)

var tStart = time.Date(2025, 6, 1, 18, 0, 0, 0, time.UTC)

func TestParseTelemetry(t *testing.T) {
	pct := []Value{{Field: "battery.pct", Unit: UnitPercent}}
	cases := []struct {
		name    string
		payload string
		vals    []Value
		want    power.Sample
		bad     string
	}{
		{name: "nested", payload: `{"battery":{"pct":81.5}}`, vals: pct, want: power.Sample{Percent: 81.5}},
		{name: "string with %", payload: `{"battery":{"pct":"64%"}}`, vals: pct, want: power.Sample{Percent: 64}},
		{name: "array index", payload: `{"packs":[{"v":14.8},{"v":15.1}]}`, vals: []Value{{Field: "packs.1.v", Unit: UnitVolts}}, want: power.Sample{Volts: 15.1}},
		{name: "plain number", payload: " 42\n", vals: []Value{{Unit: UnitPercent}}, want: power.Sample{Percent: 42}},
		{name: "volts and watts", payload: `{"bat":{"v":16.2},"load":{"w":38}}`, vals: []Value{{Field: "bat.v", Unit: UnitVolts}, {Field: "load.w", Unit: UnitWatts}}, want: power.Sample{Volts: 16.2, Watts: 38}},
		{name: "missing key", payload: `{"battery":{}}`, vals: pct, bad: `field battery.pct: no key "pct"`},
		{name: "not an object", payload: `{"battery":5}`, vals: pct, bad: `"pct": not an object`},
		{name: "not JSON", payload: `battery=5`, vals: pct, bad: `not JSON`},
		{name: "bool", payload: `{"battery":{"pct":true}}`, vals: pct, bad: `value is bool`},
		{name: "out of range", payload: `{"battery":{"pct":140}}`, vals: pct, bad: `140 is not a percentage`},
		{name: "plain garbage", payload: `full`, vals: []Value{{Unit: UnitPercent}}, bad: `payload: "full" is not a number`},
		{name: "NaN", payload: `NaN`, vals: []Value{{Unit: UnitVolts}}, bad: `not a number`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			smp, err := Parse(tStart, []byte(c.payload), c.vals)
			if c.bad != "" {
				if err == nil || !strings.Contains(err.Error(), c.bad) || !errors.Is(err, ErrPayload) {
					t.Fatalf("err %v, want %q", err, c.bad)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range []struct {
				name      string
				got, want float64
			}{{"percent", smp.Percent, c.want.Percent}, {"volts", smp.Volts, c.want.Volts}, {"watts", smp.Watts, c.want.Watts}} {
				if f.want == 0 && !math.IsNaN(f.got) || f.want != 0 && f.got != f.want {
					t.Errorf("%s = %v, want %v", f.name, f.got, f.want)
				}
			}
		})
	}
}

func FuzzParseTelemetry(f *testing.F) {
	for _, s := range []string{`{"battery":{"pct":81.5}}`, `{"a":[1,{"b":"2"}]}`, `42`, `{"battery":{"pct":"1e400"}}`, `[`} {
		f.Add(s, "battery.pct")
		f.Add(s, "")
		f.Add(s, "a.1.b")
	}
	f.Fuzz(func(t *testing.T, payload, field string) {
		smp, err := Parse(tStart, []byte(payload), []Value{{Field: field, Unit: UnitPercent}})
		if err == nil && !(smp.Percent >= 0 && smp.Percent <= 100) {
			t.Fatalf("accepted percent %v from %q", smp.Percent, payload)
		}
	})
}
