package receipts

import (
	"fmt"
	"math"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Order is what the point-of-sale tablet posts. Prices are unit prices in
// minor units (cents); Total must equal the sum of qty × price.
type Order struct {
	ClientID string `json:"client_id"`
	Order    string `json:"order"`
	Items    []Item `json:"items"`
	Total    int64  `json:"total"`
	Currency string `json:"currency"`
	Pay      string `json:"pay"`
	Buyer    *Buyer `json:"buyer,omitempty"`
	// Discreet keeps only an opaque token for the buyer; nil means the
	// ledger's default.
	Discreet *bool `json:"discreet,omitempty"`
}

// InputError is a refused order; Code is the HTTP status to answer.
type InputError struct {
	Code  int
	Field string
	Msg   string
}

func (e *InputError) Error() string {
	if e.Field == "" {
		return e.Msg
	}
	return e.Field + ": " + e.Msg
}

func badInput(field, format string, args ...any) *InputError {
	return &InputError{Code: http.StatusBadRequest, Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Currencies are the ISO 4217 codes the ledger accepts: the currencies of
// the markets the crews sell in (EU and EEA, UK, Switzerland, North
// America, Australia and New Zealand, Japan, Singapore, Hong Kong). A
// currency outside this list is refused as unknown, so that a typo such as
// "EUE" never becomes a receipt. All of them have 2 minor-unit digits
// except JPY (0); minor units are whatever the currency uses.
var Currencies = []string{
	"AUD", "CAD", "CHF", "CZK", "DKK", "EUR", "GBP", "HKD", "HUF", "ISK",
	"JPY", "NOK", "NZD", "PLN", "RON", "SEK", "SGD", "USD",
}

// PayMethods are the accepted payment methods.
var PayMethods = []string{"card", "cash", "mobile", "voucher", "other"}

// Limits on one order.
const (
	MaxItems     = 200
	MaxQty       = 100_000
	MaxUnitPrice = 100_000_000 // one million in major units
	maxText      = 200
)

var clientIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$`)

// Validate checks o against the box's currency, without writing anything.
func (o *Order) Validate(currency string) error {
	if o.ClientID == "" {
		return badInput("client_id", "missing; send the tablet's unique id for this sale, e.g. pos1-0042")
	}
	if !clientIDRE.MatchString(o.ClientID) {
		return badInput("client_id", "%q: expected 1-64 letters, digits, '.', '_', ':' or '-'", o.ClientID)
	}
	if err := checkText("order", o.Order, true); err != nil {
		return err
	}
	if len(o.Items) == 0 {
		return badInput("items", "missing; an order needs at least one item")
	}
	if len(o.Items) > MaxItems {
		return badInput("items", "%d items; at most %d per receipt", len(o.Items), MaxItems)
	}
	var sum int64
	for i, it := range o.Items {
		f := fmt.Sprintf("items[%d]", i)
		if err := checkText(f+".sku", it.SKU, true); err != nil {
			return err
		}
		if it.Qty <= 0 || it.Qty > MaxQty {
			return badInput(f+".qty", "%d; expected 1 to %d", it.Qty, MaxQty)
		}
		if it.Price < 0 || it.Price > MaxUnitPrice {
			return badInput(f+".price", "%d; expected a unit price in minor units, 0 to %d", it.Price, MaxUnitPrice)
		}
		line := it.Qty * it.Price // both bounded: cannot overflow
		if sum > math.MaxInt64-line {
			return badInput("total", "order total overflows")
		}
		sum += line
	}
	if o.Total != sum {
		return badInput("total", "%d does not add up: the items come to %d (qty × price, minor units)", o.Total, sum)
	}
	if o.Currency == "" {
		return badInput("currency", "missing; expected an ISO 4217 code such as %s", currency)
	}
	if !slices.Contains(Currencies, o.Currency) {
		return badInput("currency", "unknown currency %q; expected one of %s", o.Currency, strings.Join(Currencies, ", "))
	}
	if o.Currency != currency {
		return &InputError{Code: http.StatusUnprocessableEntity, Field: "currency", Msg: fmt.Sprintf("this box sells in %s, not %s (receipts.currency in the config)", currency, o.Currency)}
	}
	if o.Pay == "" {
		return badInput("pay", "missing; expected one of %s", strings.Join(PayMethods, ", "))
	}
	if !slices.Contains(PayMethods, o.Pay) {
		return badInput("pay", "unknown payment method %q; expected one of %s", o.Pay, strings.Join(PayMethods, ", "))
	}
	if b := o.Buyer; b != nil {
		for f, v := range map[string]string{"buyer.name": b.Name, "buyer.phone": b.Phone, "buyer.email": b.Email} {
			if err := checkText(f, v, false); err != nil {
				return err
			}
		}
		if b.Token != "" {
			return badInput("buyer.token", "is set by the box in discreet mode; do not send it")
		}
	}
	return nil
}

func checkText(field, s string, required bool) error {
	if s == "" {
		if required {
			return badInput(field, "missing")
		}
		return nil
	}
	if !utf8.ValidString(s) {
		return badInput(field, "not valid UTF-8")
	}
	if utf8.RuneCountInString(s) > maxText {
		return badInput(field, "longer than %d characters", maxText)
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return badInput(field, "contains a control character (%U)", r)
		}
	}
	return nil
}
