package template

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	"fieldkit/printer/fake"
	"fieldkit/printer/label"
	"fieldkit/printer/lang"
	"fieldkit/printer/layout"
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
		label.Text{Text: "1 x Tee black M", Right: "25.00"},
		label.Text{Text: "2 x Enamel pin", Right: "12.00"},
		label.Text{Text: "1 x Tote bag", Right: "18.00"},
		label.Text{Text: "Total", Right: "55.00 EUR", Bold: true},
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
			j, err := lang.Render(l, prof)
			if err != nil {
				t.Fatalf("%s %d: %v", lg, width, err)
			}
			if len(j.Bytes) > 1024 {
				t.Errorf("%s %d: %d bytes, want < 1 KB", lg, width, len(j.Bytes))
			}
			// Measured by the layout: every item on the paper.
			for _, pg := range j.Layout.Pages {
				for _, it := range pg.Items {
					if it.Box.Min.X < 0 || it.Box.Max.X > width {
						t.Errorf("%s %d: %v %q at %v runs off the paper", lg, width, it.Kind, it.Text, it.Box)
					}
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
	prof := label.Profile{Language: label.ESCPOS}
	j, err := lang.Render(l, prof)
	if err != nil {
		t.Fatal(err)
	}
	items := j.Layout.Pages[0].Items
	// The layout shrinks the 15-character order to size 2 (15 × 24 dots
	// of 384), wraps the long item onto two lines beside its price, and
	// prints the order as a QR code (a CODE128 of it would be 440 dots
	// wide at 2 dots per module), saying so.
	if o := items[0]; o.Text != "ORDER-000123456" || o.Size != 2 {
		t.Errorf("order %q size %d", o.Text, o.Size)
	}
	var texts []string
	for _, it := range items {
		texts = append(texts, it.Text)
	}
	all := strings.Join(texts, "|")
	for _, want := range []string{"|99|", "|0 JPY|", "|Receipt #77 abcdef01|"} {
		if !strings.Contains(all, want) {
			t.Errorf("items %q lack %q", all, want)
		}
	}
	if last := items[len(items)-1]; last.Kind != layout.QRItem || last.Data != p.Order {
		t.Errorf("last item %v %q, want the order as a QR code", last.Kind, last.Data)
	}
	// 70 characters do not fit two lines of 26 beside the price even at
	// size 1: shortened with an ellipsis, and said.
	if len(j.Warnings) != 2 || !strings.Contains(j.Warnings[0], "shortened") || !strings.Contains(j.Warnings[1], "printed as a QR code") {
		t.Errorf("warnings %q", j.Warnings)
	}
	if q := l.Elements[3].(label.QR); q.CheckFits(256) != nil || q.Module < 2 {
		t.Errorf("qr module %d", q.Module)
	}
	// An order number a CODE128 cannot carry still gets its code, as QR,
	// and a warning.
	l, _ = Render(Pickup{Order: "Bestellung-ö"}, label.Profile{Language: label.TSPL})
	j, err = lang.Render(l, label.Profile{Language: label.TSPL})
	if err != nil {
		t.Fatal(err)
	}
	items = j.Layout.Pages[0].Items
	if last := items[len(items)-1]; last.Kind != layout.QRItem || last.Data != "Bestellung-ö" || len(j.Warnings) != 1 {
		t.Errorf("non-ASCII order: last item %v %q, warnings %q", last.Kind, last.Data, j.Warnings)
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

// The buyer's name never prints larger than the order number.
func TestNameNotLargerThanOrder(t *testing.T) {
	p := SamplePickup()
	p.Order = "ORD-2026-0012345"
	for _, lg := range label.Languages {
		for _, w := range []int{384, 576} {
			prof := label.Profile{Language: lg, WidthDots: w}
			l, err := Render(p, prof)
			if err != nil {
				t.Fatal(err)
			}
			j, err := lang.Render(l, prof)
			if err != nil {
				t.Fatal(err)
			}
			items := j.Layout.Pages[0].Items
			order, name := items[0], layout.Item{}
			for _, it := range items {
				if it.Elem == 1 {
					name = it
					break
				}
			}
			if order.Text != p.Order || name.Text != p.Buyer || name.Size > order.Size {
				t.Errorf("%s %d: order %q size %d, name %q size %d", lg, w, order.Text, order.Size, name.Text, name.Size)
			}
		}
	}
}

// A rehearsal label says REHEARSAL first and last in every language and
// width, as the fake printer reads the bytes back, and in the bytes
// themselves (ZPL ^FD, TSPL TEXT, ESC/POS plain text).
func TestRehearsalMarkEveryLanguage(t *testing.T) {
	p := SamplePickup()
	p.ReceiptSeq, p.ReceiptHash, p.Rehearsal = 7, "3f9a2c1b7d4e5f60", true
	for _, discreet := range []bool{false, true} {
		p.Discreet = discreet
		for _, lg := range label.Languages {
			for _, width := range []int{label.Width58mm, label.Width80mm} {
				prof := label.Profile{Language: lg, WidthDots: width}
				l, err := Render(p, prof)
				if err != nil {
					t.Fatalf("%s %d: %v", lg, width, err)
				}
				for _, e := range l.Elements {
					if c, ok := e.(label.Code128); ok && c.Data != RehearsalMark+":"+p.Order {
						t.Fatalf("a rehearsal label's barcode carries %q", c.Data)
					}
				}
				j, err := lang.Render(l, prof)
				if err != nil {
					t.Fatalf("%s %d: %v", lg, width, err)
				}
				if !bytes.Contains(j.Bytes, []byte(RehearsalMark)) {
					t.Errorf("%s %d: the bytes never say %s", lg, width, RehearsalMark)
				}
				labels, err := fake.Decode(string(lg), j.Bytes, width)
				if err != nil || len(labels) != 1 {
					t.Fatalf("%s %d: fake printer read %d labels: %v", lg, width, len(labels), err)
				}
				texts := labels[0].Texts()
				if len(texts) < 2 || texts[0] != RehearsalMark || texts[len(texts)-1] != RehearsalMark+" - NOT A SALE" {
					t.Errorf("%s %d discreet=%v: printed texts %q; want REHEARSAL first and last", lg, width, discreet, texts)
				}
			}
		}
	}
	p.Rehearsal = false
	l, _ := Render(p, label.Profile{Language: label.ZPL})
	for _, e := range l.Elements {
		if tx, ok := e.(label.Text); ok && strings.Contains(tx.Text, RehearsalMark) {
			t.Fatalf("a real label says %q", tx.Text)
		}
	}
}
