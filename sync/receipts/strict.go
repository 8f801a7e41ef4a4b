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
// key twice (encoding/json keeps the last).
func CheckJSON(b []byte) error {
	if !utf8.Valid(b) {
		return errors.New("not valid UTF-8")
	}
	if err := checkEscapes(b); err != nil {
		return err
	}
	type frame struct {
		obj       bool
		keys      map[string]struct{}
		expectKey bool
	}
	var stack []*frame
	valueDone := func() {
		if n := len(stack); n > 0 && stack[n-1].obj {
			stack[n-1].expectKey = true
		}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	for top := 0; ; {
		tok, err := dec.Token()
		if err == io.EOF {
			if top == 0 {
				return errors.New("empty: expected one JSON object")
			}
			if len(stack) > 0 {
				return io.ErrUnexpectedEOF
			}
			break
		}
		if err != nil {
			return err
		}
		if len(stack) == 0 {
			if top++; top > 1 {
				return errors.New("trailing data after the object")
			}
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{', '[':
				if n := len(stack); n > 0 && stack[n-1].obj {
					stack[n-1].expectKey = false
				}
				stack = append(stack, &frame{obj: v == '{', keys: map[string]struct{}{}, expectKey: v == '{'})
			default:
				stack = stack[:len(stack)-1]
				valueDone()
			}
		case string:
			if n := len(stack); n > 0 && stack[n-1].obj && stack[n-1].expectKey {
				f := stack[n-1]
				if _, dup := f.keys[v]; dup {
					return fmt.Errorf("key %q appears twice in one object", v)
				}
				f.keys[v] = struct{}{}
				f.expectKey = false
				continue
			}
			valueDone()
		default:
			valueDone()
		}
	}
	return nil
}

// checkEscapes refuses a \u escape of half a surrogate pair.
func checkEscapes(b []byte) error {
	inStr := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if !inStr {
			if c == '"' {
				inStr = true
			}
			continue
		}
		switch c {
		case '"':
			inStr = false
		case '\\':
			if i+1 < len(b) && b[i+1] == 'u' {
				r, ok := hex4(b, i+2)
				if !ok {
					return nil // the decoder reports the bad escape
				}
				switch {
				case r >= 0xD800 && r <= 0xDBFF:
					lo, ok := hex4(b, i+8)
					if !ok || b[i+6] != '\\' || b[i+7] != 'u' || lo < 0xDC00 || lo > 0xDFFF {
						return fmt.Errorf(`\u%04x at byte %d is half of a UTF-16 surrogate pair, not a character`, r, i)
					}
					i += 11
					continue
				case r >= 0xDC00 && r <= 0xDFFF:
					return fmt.Errorf(`\u%04x at byte %d is half of a UTF-16 surrogate pair, not a character`, r, i)
				}
				i += 5
				continue
			}
			i++ // skip the escaped character
		}
	}
	return nil
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
