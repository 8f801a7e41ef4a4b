package receipts

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"
)

func strictUnmarshal(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data")
	}
	return nil
}

// MaxBody is the largest order body accepted over HTTP or MQTT. It is
// derived from the documented limits, so that any order within them fits
// however it is written: MaxItems items whose SKU has maxText characters,
// each character escaped as a UTF-16 surrogate pair (12 bytes, the worst
// case), with the largest qty and price; the same for the order id and
// the buyer's three fields; 64 bytes of key names, punctuation and
// whitespace per item and 4 KiB for the rest of the object.
const MaxBody = MaxItems*(maxText*maxEscapedRune+len(`{"sku":"","qty":,"price":}`)+len("100000")+len("100000000")+64) +
	4*maxText*maxEscapedRune + 4<<10

// maxEscapedRune is the longest JSON spelling of one character:
// \uD83D\uDE00.
const maxEscapedRune = 12

// orderIn is an order as posted, with every field a pointer so that a
// missing field is told from a zero one.
type orderIn struct {
	ClientID *string            `json:"client_id"`
	Order    *string            `json:"order"`
	Items    *[]json.RawMessage `json:"items"`
	Total    *int64             `json:"total"`
	Currency *string            `json:"currency"`
	Pay      *string            `json:"pay"`
	Buyer    *Buyer             `json:"buyer"`
	Discreet *bool              `json:"discreet"`
}

type itemIn struct {
	SKU   *string `json:"sku"`
	Qty   *int64  `json:"qty"`
	Price *int64  `json:"price"`
}

// ParseOrder decodes a posted order strictly: the body must be one JSON
// object in valid UTF-8 with no lone surrogate escape, no key twice in
// one object, no unknown field and nothing after it, and every required
// field present (a missing price is refused, not read as 0). Refusals are
// *InputError with code 400. The order still has to pass Validate.
func ParseOrder(b []byte) (Order, error) {
	if err := CheckJSON(b); err != nil {
		return Order{}, badInput("", "bad JSON: %v", err)
	}
	var in orderIn
	if err := decodeStrict(b, &in, ""); err != nil {
		return Order{}, err
	}
	var o Order
	missing := func(f string) error { return badInput(f, "missing") }
	if in.ClientID == nil {
		return o, badInput("client_id", "missing; send the tablet's unique id for this sale, e.g. pos1-0042")
	}
	o.ClientID = *in.ClientID
	if in.Order == nil {
		return o, missing("order")
	}
	o.Order = *in.Order
	if in.Items == nil {
		return o, badInput("items", "missing; an order needs at least one item")
	}
	for i, raw := range *in.Items {
		f := fmt.Sprintf("items[%d]", i)
		var it itemIn
		if err := decodeStrict(raw, &it, f); err != nil {
			return o, err
		}
		switch {
		case it.SKU == nil:
			return o, missing(f + ".sku")
		case it.Qty == nil:
			return o, missing(f + ".qty")
		case it.Price == nil:
			return o, badInput(f+".price", "missing; send the unit price in minor units (0 for a free item)")
		}
		o.Items = append(o.Items, Item{SKU: *it.SKU, Qty: *it.Qty, Price: *it.Price})
	}
	if in.Total == nil {
		return o, badInput("total", "missing; send the sum of qty × price in minor units (0 if everything is free)")
	}
	o.Total = *in.Total
	if in.Currency == nil {
		return o, badInput("currency", "missing; expected an ISO 4217 code such as EUR")
	}
	o.Currency = *in.Currency
	if in.Pay == nil {
		return o, badInput("pay", "missing; expected one of %s", strings.Join(PayMethods, ", "))
	}
	o.Pay = *in.Pay
	o.Buyer, o.Discreet = in.Buyer, in.Discreet
	return o, nil
}

// decodeStrict decodes b into v refusing unknown fields, and says which
// field (under prefix) had the wrong type.
func decodeStrict(b []byte, v any, prefix string) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		return nil
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		f := te.Field
		switch {
		case prefix != "" && f != "":
			f = prefix + "." + f
		case prefix != "":
			f = prefix
		case f == "":
			f = "the body"
		}
		return badInput("", "bad JSON: %s: %s is not %s", f, te.Value, typeName(te.Type.Kind().String()))
	}
	if prefix != "" {
		return badInput("", "bad JSON: %s: %v", prefix, err)
	}
	return badInput("", "bad JSON: %v", err)
}

func typeName(kind string) string {
	switch kind {
	case "int64":
		return "a whole number in range (minor units, no decimals or exponent)"
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "slice":
		return "a list"
	case "struct", "ptr":
		return "an object"
	}
	return "of type " + kind
}

// CheckJSON checks what encoding/json lets through: b must be one JSON
// value in valid UTF-8, with no \u escape that is half of a surrogate
// pair (encoding/json turns it into U+FFFD) and no object with the same
// key twice (encoding/json keeps the last). It runs on every line the
// cloud ingests, so it is one pass over the bytes after json.Valid.
func CheckJSON(b []byte) error {
	if !utf8.Valid(b) {
		return errors.New("not valid UTF-8")
	}
	if !json.Valid(b) {
		return syntaxError(b)
	}
	type frame struct {
		obj, expectKey bool
		keys           []string
	}
	var stack []frame
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '{':
			stack = append(stack, frame{obj: true, expectKey: true})
		case '[':
			stack = append(stack, frame{})
		case '}', ']':
			stack = stack[:len(stack)-1]
		case ',':
			if n := len(stack); n > 0 && stack[n-1].obj {
				stack[n-1].expectKey = true
			}
		case '"':
			end, hasEscape, err := scanString(b, i)
			if err != nil {
				return err
			}
			if n := len(stack); n > 0 && stack[n-1].obj && stack[n-1].expectKey {
				f := &stack[n-1]
				key := string(b[i+1 : end])
				if hasEscape {
					_ = json.Unmarshal(b[i:end+1], &key)
				}
				for _, k := range f.keys {
					if k == key {
						return fmt.Errorf("key %q appears twice in one object", key)
					}
				}
				f.keys = append(f.keys, key)
				f.expectKey = false
			}
			i = end
		}
	}
	return nil
}

// syntaxError says why b is not one JSON value.
func syntaxError(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	var v any
	if err := dec.Decode(&v); err != nil {
		if err == io.EOF {
			return errors.New("empty: expected one JSON object")
		}
		return err
	}
	return errors.New("trailing data after the object")
}

// scanString finds the closing quote of the string opening at b[at] and
// refuses a \u escape of half a surrogate pair. b is valid JSON.
func scanString(b []byte, at int) (end int, hasEscape bool, err error) {
	for i := at + 1; i < len(b); i++ {
		switch b[i] {
		case '"':
			return i, hasEscape, nil
		case '\\':
			hasEscape = true
			if b[i+1] != 'u' {
				i++
				continue
			}
			r, _ := hex4(b, i+2)
			switch {
			case r >= 0xD800 && r <= 0xDBFF:
				lo, ok := hex4(b, i+8)
				if !ok || b[i+6] != '\\' || b[i+7] != 'u' || lo < 0xDC00 || lo > 0xDFFF {
					return 0, false, fmt.Errorf(`\u%04x at byte %d is half of a UTF-16 surrogate pair, not a character`, r, i)
				}
				i += 11
			case r >= 0xDC00 && r <= 0xDFFF:
				return 0, false, fmt.Errorf(`\u%04x at byte %d is half of a UTF-16 surrogate pair, not a character`, r, i)
			default:
				i += 5
			}
		}
	}
	return len(b), hasEscape, nil
}

func hex4(b []byte, at int) (rune, bool) {
	if at+4 > len(b) {
		return 0, false
	}
	n, err := strconv.ParseUint(string(b[at:at+4]), 16, 16)
	return rune(n), err == nil
}

// errConflict makes the answer to a client_id reused for another order.
func errConflict(clientID string, stored uint64) error {
	return &InputError{Code: http.StatusConflict, Field: "client_id", Msg: fmt.Sprintf(
		"%q already names receipt seq %d, a different order; a retry must send the same order, a new sale needs a new client_id", clientID, stored)}
}
