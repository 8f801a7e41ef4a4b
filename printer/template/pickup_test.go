package template

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"fieldkit/printer/label"
	"fieldkit/printer/lang"
)

func TestSamplePickup(t *testing.T) {
	p := SamplePickup()
	if len(p.QR) != 45 {
		t.Fatalf("reference QR is %d characters, want 45", len(p.QR))
	}
	l, err := Render(p, label.Profile{Language: label.ESCPOS})
	if err != nil {
		t.Fatal(err)
	}
	want := []label.Element{
		label.Text{Text: "A-1042", Size: 4, Bold: true, Align: label.Center},
		label.Text{Text: "Ada Lovelace", Size: 2, Align: label.Center},
		label.Text{Text: "1 x Tee black M            25.00"},
		label.Text{Text: "2 x Enamel pin             12.00"},
		label.Text{Text: "1 x Tote bag               18.00"},
		label.Text{Text: "Total                  55.00 EUR", Bold: true},
		label.QR{Data: p.QR, Module: 6, Align: label.Center},
		label.Code128{Data: "A-1042", Height: 48, Align: label.Center},
		label.Cut{},
	}
	if !reflect.DeepEqual(l.Elements, want) {
		t.Fatalf("got\n%#v\nwant\n%#v", l.Elements, want)
	}
	if l.ID != "A-1042" {
		t.Errorf("id %q", l.ID)
	}
}

// The same data renders in all three languages and fits each paper.
func TestRenderEveryLanguage(t *testing.T) {
	p := SamplePickup()
	p.ReceiptSeq, p.ReceiptHash = 1042, "3f9a2c1b7d4e5f60"
	p.Buyer = "Zoë “Zee” Ångström-Øre"
	for _, lg := range label.Languages {
		for _, width := range []int{label.Width58mm, label.Width80mm} {
			prof := label.Profile{Language: lg, WidthDots: width}
			l, err := Render(p, prof)
			if err != nil {
				t.Fatalf("%s %d: %v", lg, width, err)
			}
			b, err := lang.Encode(l, prof)
			if err != nil {
				t.Fatalf("%s %d: %v", lg, width, err)
			}
			if len(b) > 1024 {
				t.Errorf("%s %d: %d bytes, want < 1 KB", lg, width, len(b))
			}
			for _, e := range l.Elements {
				if tx, ok := e.(label.Text); ok && len([]rune(tx.Text))*tx.TextSize() > Columns(prof) {
					t.Errorf("%s %d: %q at size %d is wider than %d columns", lg, width, tx.Text, tx.TextSize(), Columns(prof))
				}
			}
		}
	}
}

func TestDiscreet(t *testing.T) {
	p := SamplePickup()
	p.Discreet = true
	l, err := Render(p, label.Profile{Language: label.ZPL})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range l.Elements {
		if tx, ok := e.(label.Text); ok && tx.Text != "A-1042" {
			t.Errorf("discreet label prints %q", tx.Text)
		}
	}
	if len(l.Elements) != 4 { // order, QR, barcode, cut
		t.Errorf("%d elements: %#v", len(l.Elements), l.Elements)
	}
}

func TestReceiptLineAndFitting(t *testing.T) {
	p := Pickup{Order: "ORDER-000123456", ReceiptSeq: 77, ReceiptHash: "abcdef0123456789",
		Items: []Item{{Qty: 1, Name: strings.Repeat("Very long product name ", 3), Price: 99}}, Currency: "JPY",
		QR: strings.Repeat("t", 200)}
	l, err := Render(p, label.Profile{Language: label.ESCPOS})
	if err != nil {
		t.Fatal(err)
	}
	if o := l.Elements[0].(label.Text); o.Size != 2 { // 15 characters in 32 columns
		t.Errorf("order size %d", o.Size)
	}
	if it := l.Elements[1].(label.Text).Text; len(it) != 32 || !strings.HasSuffix(it, " 99") || !strings.Contains(it, ".") {
		t.Errorf("item line %q", it)
	}
	if tot := l.Elements[2].(label.Text).Text; !strings.HasSuffix(tot, "0 JPY") {
		t.Errorf("total line %q", tot)
	}
	if q := l.Elements[3].(label.QR); q.CheckFits(256) != nil || q.Module < 2 {
		t.Errorf("qr module %d", q.Module)
	}
	if r := l.Elements[4].(label.Text).Text; r != "Receipt #77 abcdef01" {
		t.Errorf("receipt line %q", r)
	}
	// An order number a CODE128 cannot carry gets no barcode.
	l, _ = Render(Pickup{Order: "Bestellung-ö"}, label.Profile{Language: label.TSPL})
	for _, e := range l.Elements {
		if _, ok := e.(label.Code128); ok {
			t.Error("barcode of non-ASCII order")
		}
	}
}

func TestDecodePickup(t *testing.T) {
	p, err := DecodePickup([]byte(`{"order":"A-1","buyer":"Ada","items":[{"qty":2,"name":"Pin","price":600}],"total":1200,"currency":"EUR","qr":"tok"}`))
	if err != nil {
		t.Fatal(err)
	}
	if p.Order != "A-1" || p.Items[0].Qty != 2 || p.Total != 1200 {
		t.Fatalf("%+v", p)
	}
	for _, bad := range []string{
		`{"order":"A-1","colour":"red"}`,
		`{"order":""}`,
		`{"order":"A-1","items":[{"qty":0,"name":"x"}]}`,
		`{"order":"A-1","items":[{"qty":1,"name":""}]}`,
		`{"order":"A-1","currency":"euro"}`,
		`{"order":"A-1","receipt_hash":"ab"}`,
		`{"order":"A-1"} {}`,
		`{"order":"` + strings.Repeat("9", MaxOrder+1) + `"}`,
	} {
		if _, err := DecodePickup([]byte(bad)); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v", bad, err)
		}
	}
}
