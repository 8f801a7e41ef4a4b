// Package template turns order data into labels. The pickup label is the
// one pickup staff hand over with an order: the order number large, the
// buyer's display name (left out in discreet mode), the items and total,
// a QR code of the receipt token or URL, the receipt's sequence number
// and short hash, and the order number as a CODE128 for a scanner.
package template

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"fieldkit/printer/label"
	"fieldkit/printer/layout"
)

// ErrInvalid is wrapped by errors about the pickup data.
var ErrInvalid = errors.New("invalid pickup label data")

// Pickup is the data of a pickup label, in the JSON form the API takes:
//
//	{"order":"A-1042","buyer":"Ada L.","discreet":false,
//	 "items":[{"qty":2,"name":"Tee black M","price":2500}],
//	 "total":5000,"currency":"EUR",
//	 "qr":"https://example.com/r/8F3KQ2","receipt_seq":1042,"receipt_hash":"3f9a2c1b…"}
//
// Prices are in minor units (cents), as receipts keep them.
type Pickup struct {
	Order string `json:"order"`
	// Buyer is the display name; not printed when Discreet is set.
	Buyer    string `json:"buyer,omitempty"`
	Discreet bool   `json:"discreet,omitempty"`
	Items    []Item `json:"items,omitempty"`
	// Total in minor units; printed when there are items or it is set.
	Total    int64  `json:"total,omitempty"`
	Currency string `json:"currency,omitempty"`
	// QR is a receipt token or URL to scan at pickup.
	QR string `json:"qr,omitempty"`
	// ReceiptSeq and ReceiptHash (hex) tie the label to the signed
	// receipt; the hash is printed shortened to 8 characters.
	ReceiptSeq  uint64 `json:"receipt_seq,omitempty"`
	ReceiptHash string `json:"receipt_hash,omitempty"`
	// NoBarcode leaves out the CODE128 of the order number.
	NoBarcode bool `json:"no_barcode,omitempty"`
	// Rehearsal marks a label printed by a box in rehearsal mode: it says
	// REHEARSAL above and below the order, so that no phantom order is
	// ever handed over as a real one.
	Rehearsal bool `json:"rehearsal,omitempty"`
}

// RehearsalMark is what every rehearsal label says, first and last.
const RehearsalMark = "REHEARSAL"

// Item is one order line.
type Item struct {
	Qty   int    `json:"qty"`
	Name  string `json:"name"`
	Price int64  `json:"price"` // line total in minor units
}

// Limits on pickup data.
const (
	MaxOrder = 16
	MaxItems = 20
)

// DecodePickup reads the JSON form strictly (unknown keys refused).
func DecodePickup(data []byte) (Pickup, error) {
	var p Pickup
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return Pickup{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if dec.More() {
		return Pickup{}, fmt.Errorf("%w: trailing data after the JSON object", ErrInvalid)
	}
	return p, p.Validate()
}

// Validate checks the data before any layout.
func (p Pickup) Validate() error {
	if p.Order == "" || utf8.RuneCountInString(p.Order) > MaxOrder {
		return fmt.Errorf("%w: order %q: want 1-%d characters", ErrInvalid, p.Order, MaxOrder)
	}
	if len(p.Items) > MaxItems {
		return fmt.Errorf("%w: %d items: at most %d per label", ErrInvalid, len(p.Items), MaxItems)
	}
	for i, it := range p.Items {
		if it.Qty < 1 || it.Qty > 999 {
			return fmt.Errorf("%w: items[%d]: qty %d: want 1-999", ErrInvalid, i, it.Qty)
		}
		if it.Name == "" {
			return fmt.Errorf("%w: items[%d]: empty name", ErrInvalid, i)
		}
	}
	if p.Currency != "" && (len(p.Currency) != 3 || strings.ToUpper(p.Currency) != p.Currency) {
		return fmt.Errorf("%w: currency %q: want a three-letter code such as EUR", ErrInvalid, p.Currency)
	}
	if p.ReceiptHash != "" && p.ReceiptSeq == 0 {
		return fmt.Errorf("%w: receipt_hash without receipt_seq", ErrInvalid)
	}
	return nil
}

// Render builds the pickup label for the printer profile. Sizes are what
// the label asks for; package layout measures them on the printer's
// paper and wraps, shrinks or shortens what does not fit. Prices are
// right-justified by the printer, not padded with spaces.
func Render(p Pickup, prof label.Profile) (label.Label, error) {
	if err := p.Validate(); err != nil {
		return label.Label{}, err
	}
	var els []label.Element
	add := func(e label.Element) { els = append(els, e) }

	if p.Rehearsal {
		add(label.Text{Text: RehearsalMark, Size: 3, Bold: true, Underline: true, Align: label.Center})
	}
	order := label.Text{Text: p.Order, Size: 4, Bold: true, Align: label.Center}
	add(order)
	if p.Buyer != "" && !p.Discreet {
		// The order number is what staff look for: the name is never
		// printed larger than the size the order number fits at.
		size := 2
		if lay, err := layout.Place(label.Label{Elements: []label.Element{order}}, prof); err == nil {
			size = min(size, lay.Pages[0].Items[0].Size)
		}
		add(label.Text{Text: clip(p.Buyer, label.MaxTextRunes), Size: size, Align: label.Center})
	}
	if !p.Discreet {
		for _, it := range p.Items {
			add(label.Text{Text: clip(fmt.Sprintf("%d x %s", it.Qty, it.Name), label.MaxTextRunes), Right: money(it.Price, p.Currency)})
		}
		if len(p.Items) > 0 || p.Total != 0 {
			add(label.Text{Text: "Total", Right: strings.TrimSpace(money(p.Total, p.Currency) + " " + p.Currency), Bold: true})
		}
	}
	if p.QR != "" {
		q := label.QR{Data: p.QR, EC: label.ECM, Align: label.Center}
		q.Module = 6
		for q.Module > 2 {
			if q.CheckFits(prof.WithDefaults().WidthDots*2/3) == nil {
				break
			}
			q.Module--
		}
		add(q)
	}
	if p.ReceiptSeq != 0 {
		line := fmt.Sprintf("Receipt #%d", p.ReceiptSeq)
		if h := p.ReceiptHash; h != "" {
			line += " " + h[:min(8, len(h))]
		}
		add(label.Text{Text: line, Align: label.Center})
	}
	if !p.NoBarcode {
		// Always asked for: an order number a CODE128 cannot carry is
		// printed as a QR code by the layout, with a warning on the job.
		data := p.Order
		if p.Rehearsal {
			// A rehearsal order number may be a real order's too: the
			// scanner must never find that one.
			data = RehearsalMark + ":" + data
		}
		add(label.Code128{Data: data, Height: 48, Align: label.Center})
	}
	if p.Rehearsal {
		add(label.Text{Text: RehearsalMark + " - NOT A SALE", Bold: true, Align: label.Center})
	}
	add(label.Cut{})
	l := label.Label{Elements: els}
	if id := sanitizeID(p.Order); id != "" {
		l.ID = id
	}
	return l, l.Validate()
}

func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// money formats an amount in minor units: two decimals, or none for the
// currencies without a minor unit.
func money(minor int64, currency string) string {
	sign := ""
	if minor < 0 {
		sign, minor = "-", -minor
	}
	s := fmt.Sprintf("%s%d.%02d", sign, minor/100, minor%100)
	switch currency {
	case "JPY", "KRW", "ISK", "HUF", "CLP":
		s = fmt.Sprintf("%s%d", sign, minor)
	}
	return s
}

// sanitizeID keeps the characters a label id allows.
func sanitizeID(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', strings.ContainsRune("._:-", r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// SamplePickup is the reference pickup label: a six-character order
// number, a buyer name, three items, a bold total, a QR of a 45-character
// receipt URL, the order as CODE128, and a cut. The label-bytes bench
// measures it.
func SamplePickup() Pickup {
	return Pickup{
		Order:    "A-1042",
		Buyer:    "Ada Lovelace",
		Currency: "EUR",
		Items: []Item{
			{Qty: 1, Name: "Tee black M", Price: 2500},
			{Qty: 2, Name: "Enamel pin", Price: 1200},
			{Qty: 1, Name: "Tote bag", Price: 1800},
		},
		Total: 5500,
		QR:    "https://fieldkit.example/r/8F3KQ2XH7M4P9TWZAB", // 45 characters
	}
}
