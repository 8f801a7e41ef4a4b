package label

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"
)

// The keys each kind of element accepts, besides its kind key. Matching is
// exact: encoding/json would accept "TEXT" for "text", a strict format
// must not.
var optionKeys = map[string][]string{
	"text":    {"right", "size", "bold", "underline", "align"},
	"code128": {"height", "hri", "align"},
	"qr":      {"size", "ec", "align"},
	"feed":    nil,
	"cut":     nil,
}

var kindKeys = []string{"text", "code128", "qr", "feed", "cut"}

// Decode parses the JSON form of a label (see the package comment) and
// validates it. Every error wraps ErrInvalid and says where and what was
// expected.
func Decode(data []byte) (Label, error) {
	if len(data) > MaxJSONBytes {
		return Label{}, invalid("%d bytes of JSON: at most %d", len(data), MaxJSONBytes)
	}
	if !utf8.Valid(data) {
		// encoding/json would quietly turn bad bytes into U+FFFD, which
		// then prints as garbage.
		return Label{}, invalid("input is not valid UTF-8")
	}
	var top map[string]json.RawMessage
	if err := unmarshalOne(data, &top); err != nil {
		return Label{}, invalid("%v", describe("", err))
	}
	if top == nil {
		return Label{}, invalid("want a JSON object {\"elements\": [...]}")
	}
	var l Label
	for k := range top {
		if k != "id" && k != "elements" {
			return Label{}, invalid("unknown key %q: a label has id and elements", k)
		}
	}
	if raw, ok := top["id"]; ok {
		if err := unmarshalOne(raw, &l.ID); err != nil {
			return Label{}, invalid("%v", describe("id", err))
		}
	}
	raw, ok := top["elements"]
	if !ok {
		return Label{}, invalid("no elements: want \"elements\": [...]")
	}
	var elems []json.RawMessage
	if err := unmarshalOne(raw, &elems); err != nil {
		return Label{}, invalid("%v", describe("elements", err))
	}
	if len(elems) > MaxElements {
		return Label{}, invalid("%d elements: at most %d", len(elems), MaxElements)
	}
	for i, raw := range elems {
		e, err := decodeElement(raw)
		if err != nil {
			return Label{}, invalid("elements[%d]: %v", i, err)
		}
		l.Elements = append(l.Elements, e)
	}
	if err := l.Validate(); err != nil {
		return Label{}, err
	}
	return l, nil
}

func decodeElement(raw json.RawMessage) (Element, error) {
	var m map[string]json.RawMessage
	if err := unmarshalOne(raw, &m); err != nil {
		return nil, describe("", err)
	}
	if m == nil {
		return nil, errors.New("want an object such as {\"text\": \"...\"}")
	}
	kind := ""
	for _, k := range kindKeys {
		if _, ok := m[k]; ok {
			if kind != "" {
				return nil, fmt.Errorf("both %q and %q: one kind per element", kind, k)
			}
			kind = k
		}
	}
	if kind == "" {
		return nil, fmt.Errorf("no kind: want one of %s", strings.Join(kindKeys, ", "))
	}
	for k := range m {
		if k != kind && !slices.Contains(optionKeys[kind], k) {
			if len(optionKeys[kind]) == 0 {
				return nil, fmt.Errorf("%s: unknown key %q: %s takes no options", kind, k, kind)
			}
			return nil, fmt.Errorf("%s: unknown key %q: want %s", kind, k, strings.Join(optionKeys[kind], ", "))
		}
	}
	d := fieldDecoder{m: m, kind: kind}
	switch kind {
	case "text":
		var t Text
		d.str("text", &t.Text)
		if _, ok := m["right"]; ok {
			d.str("right", &t.Right)
		}
		d.intIn("size", &t.Size, 1, MaxTextSize)
		d.boolean("bold", &t.Bold)
		d.boolean("underline", &t.Underline)
		d.align(&t.Align)
		return t, d.err
	case "code128":
		var c Code128
		d.str("code128", &c.Data)
		d.intIn("height", &c.Height, MinBarHeight, MaxBarHeight)
		hri := true
		d.boolean("hri", &hri)
		c.HideText = !hri
		d.align(&c.Align)
		return c, d.err
	case "qr":
		var q QR
		d.str("qr", &q.Data)
		d.intIn("size", &q.Module, 1, MaxQRModule)
		if raw, ok := m["ec"]; ok && d.err == nil {
			var s string
			if err := unmarshalOne(raw, &s); err != nil {
				d.err = describe(kind+": ec", err)
			} else if q.EC, err = ParseEC(s); err != nil {
				d.err = fmt.Errorf("%s: %v", kind, err)
			}
		}
		d.align(&q.Align)
		return q, d.err
	case "feed":
		var f Feed
		f.Lines = -1
		d.intIn("feed", &f.Lines, 1, MaxFeed)
		return f, d.err
	default: // cut
		var b bool
		d.boolean("cut", &b)
		if d.err == nil && !b {
			return nil, errors.New("cut: want true (leave the element out for no cut)")
		}
		return Cut{}, d.err
	}
}

// fieldDecoder reads typed options from an element, keeping the first
// error, so that each kind reads as a flat list of its options.
type fieldDecoder struct {
	m    map[string]json.RawMessage
	kind string
	err  error
}

func (d *fieldDecoder) get(key string, v any) bool {
	raw, ok := d.m[key]
	if !ok || d.err != nil {
		return false
	}
	if err := unmarshalOne(raw, v); err != nil {
		d.err = describe(d.kind+": "+key, err)
		return false
	}
	return true
}

func (d *fieldDecoder) str(key string, v *string) { d.get(key, v) }

func (d *fieldDecoder) boolean(key string, v *bool) { d.get(key, v) }

func (d *fieldDecoder) intIn(key string, v *int, lo, hi int) {
	var n int
	if !d.get(key, &n) {
		return
	}
	if n < lo || n > hi {
		d.err = fmt.Errorf("%s: %s %d out of range: want %d-%d", d.kind, key, n, lo, hi)
		return
	}
	*v = n
}

func (d *fieldDecoder) align(v *Align) {
	var s string
	if !d.get("align", &s) {
		return
	}
	a, err := ParseAlign(s)
	if err != nil {
		d.err = fmt.Errorf("%s: %v", d.kind, err)
		return
	}
	*v = a
}

// unmarshalOne decodes exactly one JSON value; trailing data is an error.
func unmarshalOne(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return errors.New("empty input")
		}
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

// describe turns encoding/json errors, which speak of Go types, into
// what a person writing the JSON expects.
func describe(where string, err error) error {
	prefix := ""
	if where != "" {
		prefix = where + ": "
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Errorf("%sgot a JSON %s, want %s", prefix, te.Value, jsonKind(te.Type.Kind().String()))
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("%sJSON syntax error at byte %d: %v", prefix, se.Offset, err)
	}
	return fmt.Errorf("%s%v", prefix, err)
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "int":
		return "a whole number"
	case "slice":
		return "an array"
	case "map":
		return "an object"
	}
	return goKind
}

// MarshalJSON writes the form Decode reads, leaving out defaults.
func (l Label) MarshalJSON() ([]byte, error) {
	type out struct {
		ID       string           `json:"id,omitempty"`
		Elements []map[string]any `json:"elements"`
	}
	o := out{ID: l.ID, Elements: make([]map[string]any, 0, len(l.Elements))}
	for i, e := range l.Elements {
		m := map[string]any{}
		switch e := e.(type) {
		case Text:
			m["text"] = e.Text
			if e.Right != "" {
				m["right"] = e.Right
			}
			if e.Size != 0 {
				m["size"] = e.Size
			}
			if e.Bold {
				m["bold"] = true
			}
			if e.Underline {
				m["underline"] = true
			}
			putAlign(m, e.Align)
		case Code128:
			m["code128"] = e.Data
			if e.Height != 0 {
				m["height"] = e.Height
			}
			if e.HideText {
				m["hri"] = false
			}
			putAlign(m, e.Align)
		case QR:
			m["qr"] = e.Data
			if e.Module != 0 {
				m["size"] = e.Module
			}
			if e.EC != ECM {
				m["ec"] = e.EC.String()
			}
			putAlign(m, e.Align)
		case Feed:
			m["feed"] = e.Lines
		case Cut:
			m["cut"] = true
		default:
			return nil, fmt.Errorf("label: elements[%d]: cannot marshal %T", i, e)
		}
		o.Elements = append(o.Elements, m)
	}
	return json.Marshal(o)
}

func putAlign(m map[string]any, a Align) {
	if a != Left {
		m["align"] = a.String()
	}
}

// UnmarshalJSON decodes strictly, as Decode does, so that a Label can sit
// inside a larger JSON request.
func (l *Label) UnmarshalJSON(data []byte) error {
	v, err := Decode(data)
	if err != nil {
		return err
	}
	*l = v
	return nil
}
