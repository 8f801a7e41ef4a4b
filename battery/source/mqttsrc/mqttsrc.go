// Package mqttsrc is the battery source mqtt: a device (a wearable, an
// encoder) that publishes its battery on an MQTT topic, as one value
// (field + unit) or several (fields).
package mqttsrc

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"fieldkit/battery/source"
	"fieldkit/drivers/power"
	"fieldkit/internal/confutil"
	"fieldkit/internal/topic"
)

// Config is an MQTT rig: an absolute topic, and one value or several.
type Config struct {
	Topic  string  `yaml:"topic"`
	Field  string  `yaml:"field"` // dotted JSON path; "" for a plain number
	Unit   string  `yaml:"unit"`  // percent, volts or watts
	Fields []Value `yaml:"fields"`
}

// Value is one quantity in an MQTT payload.
type Value struct {
	Field string `yaml:"field"`
	Unit  string `yaml:"unit"`
}

// Units a value can be in.
const (
	UnitPercent = "percent"
	UnitVolts   = "volts"
	UnitWatts   = "watts"
)

var fieldRE = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$`)

// New is a config to decode into.
func New() source.Config { return &Config{} }

func (c *Config) Validate(p *confutil.Problems) {
	if c.Topic == "" {
		p.Addf("topic", "missing; expected the topic the device publishes its battery on")
	} else if err := topic.ValidName(c.Topic); err != nil {
		p.Addf("topic", "%v", err)
	}
	vals, err := c.Values()
	if err != nil {
		p.Addf("fields", "%v", err)
	}
	units := map[string]bool{}
	for i, v := range vals {
		key := "fields[" + fmt.Sprint(i) + "]"
		if len(c.Fields) == 0 {
			key = ""
		}
		if v.Field != "" && !fieldRE.MatchString(v.Field) {
			p.Addf(join(key, "field"), "%q: expected a dotted path such as battery.pct, or empty for a plain number", v.Field)
		}
		switch v.Unit {
		case UnitPercent, UnitVolts, UnitWatts:
			if units[v.Unit] {
				p.Addf(join(key, "unit"), "%s is given twice", v.Unit)
			}
			units[v.Unit] = true
		default:
			p.Addf(join(key, "unit"), "unknown unit %q; expected percent, volts or watts", v.Unit)
		}
	}
	if len(vals) > 0 && units[UnitWatts] && !units[UnitPercent] && !units[UnitVolts] {
		p.Addf("unit", "watts alone cannot tell the charge; add a percent or volts value")
	}
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + "." + b
}

// Pack: a device that reports its charge needs no pack described.
func (c *Config) Pack(s source.PackSpec) (power.Pack, error) {
	vals, _ := c.Values()
	return source.ResolvePack(s, source.PackDefaults{ReportsCharge: !hasUnit(vals, UnitVolts)})
}

// Poll is 0: the device decides how often it reports.
func (c *Config) Poll() time.Duration { return 0 }

func (c *Config) Open(source.Env) (any, error) {
	vals, err := c.Values()
	if err != nil {
		return nil, err
	}
	return pusher{topic: c.Topic, vals: vals}, nil
}

// Values are the values, from field+unit and fields.
func (c *Config) Values() ([]Value, error) {
	var vals []Value
	if c.Field != "" || c.Unit != "" {
		vals = append(vals, Value{Field: c.Field, Unit: c.Unit})
	}
	vals = append(vals, c.Fields...)
	if len(vals) == 0 {
		return nil, fmt.Errorf("no value; set unit (percent, volts or watts) and field (a JSON path, or none for a plain number)")
	}
	return vals, nil
}

func hasUnit(vals []Value, u string) bool {
	for _, v := range vals {
		if v.Unit == u {
			return true
		}
	}
	return false
}

type pusher struct {
	topic string
	vals  []Value
}

func (p pusher) Topic() string { return p.topic }

func (p pusher) Parse(at time.Time, payload []byte) (power.Sample, error) {
	return Parse(at, payload, p.vals)
}

// ErrPayload is a telemetry message that does not hold the configured value.
var ErrPayload = errors.New("battery telemetry")

// Parse reads the values from one MQTT payload.
func Parse(at time.Time, payload []byte, vals []Value) (power.Sample, error) {
	smp := power.NewSample(at)
	var doc any
	needJSON := false
	for _, v := range vals {
		if v.Field != "" {
			needJSON = true
		}
	}
	if needJSON {
		dec := json.NewDecoder(strings.NewReader(string(payload)))
		dec.UseNumber()
		if err := dec.Decode(&doc); err != nil {
			return smp, fmt.Errorf("%w: payload is not JSON: %v", ErrPayload, err)
		}
	}
	for _, v := range vals {
		var f float64
		var err error
		if v.Field == "" {
			f, err = number(strings.TrimSpace(string(payload)))
		} else {
			f, err = extract(doc, v.Field)
		}
		if err != nil {
			return smp, fmt.Errorf("%w: %s: %v", ErrPayload, fieldName(v.Field), err)
		}
		switch v.Unit {
		case UnitPercent:
			if f < 0 || f > 100 {
				return smp, fmt.Errorf("%w: %s: %v is not a percentage", ErrPayload, fieldName(v.Field), f)
			}
			smp.Percent = f
		case UnitVolts:
			if f < 0 || f > 1000 {
				return smp, fmt.Errorf("%w: %s: %v V is not a battery voltage", ErrPayload, fieldName(v.Field), f)
			}
			smp.Volts = f
		case UnitWatts:
			if math.Abs(f) > 100000 {
				return smp, fmt.Errorf("%w: %s: %v W is not a plausible load", ErrPayload, fieldName(v.Field), f)
			}
			smp.Watts = f
		}
	}
	return smp, nil
}

func fieldName(f string) string {
	if f == "" {
		return "payload"
	}
	return "field " + f
}

// extract follows a dotted path through objects (and arrays, by index).
func extract(doc any, path string) (float64, error) {
	cur := doc
	for _, seg := range strings.Split(path, ".") {
		switch n := cur.(type) {
		case map[string]any:
			v, ok := n[seg]
			if !ok {
				return 0, fmt.Errorf("no key %q", seg)
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(n) {
				return 0, fmt.Errorf("%q is not an index of a %d-element list", seg, len(n))
			}
			cur = n[i]
		default:
			return 0, fmt.Errorf("%q: not an object", seg)
		}
	}
	switch v := cur.(type) {
	case json.Number:
		return number(v.String())
	case string:
		return number(strings.TrimSuffix(strings.TrimSpace(v), "%"))
	}
	return 0, fmt.Errorf("value is %T, not a number", cur)
}

func number(s string) (float64, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%q is not a number", truncate(s, 40))
	}
	return f, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
