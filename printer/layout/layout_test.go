package layout

import (
	"image"
	"strings"
	"testing"
	"unicode/utf8"

	"fieldkit/printer/label"
)

func place(t *testing.T, p label.Profile, els ...label.Element) *Layout {
	t.Helper()
	lay, err := Place(label.Label{Elements: els}, p)
	if err != nil {
		t.Fatal(err)
	}
	return lay
}

func texts(lay *Layout) []Item {
	var out []Item
	for _, pg := range lay.Pages {
		for _, it := range pg.Items {
			if it.Kind == TextItem {
				out = append(out, it)
			}
		}
	}
	return out
}

// Widths are counted after transliteration: "œ" goes out as "oe", two
// cells on a cp858 printer, and the right part still ends at the edge.
func TestWidthAfterTransliteration(t *testing.T) {
	p := label.Profile{Language: label.ESCPOS, WidthDots: 384, CodePage: "cp858"}
	lay := place(t, p, label.Text{Text: "Cœur ßß", Right: "5 €"})
	ts := texts(lay)
	if len(ts) != 2 || ts[0].Text != "Coeur ßß" || ts[0].Box.Dx() != 8*12 { // cp858 has ß
		t.Fatalf("left %+v", ts)
	}
	lay = place(t, label.Profile{Language: label.ESCPOS, WidthDots: 384, CodePage: "ascii"}, label.Text{Text: "Cœur ßß"})
	if ts := texts(lay); ts[0].Text != "Coeur ssss" || ts[0].Box.Dx() != 10*12 {
		t.Fatalf("left %+v", ts)
	}
	// cp858 has € (0xD5): three cells, flush with the 32nd column.
	if ts[1].Text != "5 €" || ts[1].Box.Max.X != 384 || ts[1].Box.Dx() != 36 {
		t.Errorf("right %+v", ts[1])
	}
	// On ASCII the euro becomes "EUR": five cells.
	lay = place(t, label.Profile{Language: label.ESCPOS, WidthDots: 384, CodePage: "ascii"}, label.Text{Text: "x", Right: "5 €"})
	if r := texts(lay)[1]; r.Text != "5 EUR" || r.Box.Dx() != 60 || r.Box.Max.X != 384 {
		t.Errorf("ascii right %+v", r)
	}
}

// Degradation order: wrap first, then a smaller size, then an ellipsis.
func TestDegradationOrder(t *testing.T) {
	p := label.Profile{Language: label.TSPL, WidthDots: 384} // 16-dot cells
	// Two words that fit two lines at size 2 (12 cells a line): wrapped,
	// not shrunk.
	ts := texts(place(t, p, label.Text{Text: "abcdefgh ijklmnop", Size: 2}))
	if len(ts) != 2 || ts[0].Size != 2 || ts[0].Text != "abcdefgh" || ts[1].Text != "ijklmnop" {
		t.Errorf("wrap: %+v", ts)
	}
	// One word too long for a size-4 line: smaller, not broken.
	ts = texts(place(t, p, label.Text{Text: "ORDER-12345", Size: 4}))
	if len(ts) != 1 || ts[0].Size != 2 || ts[0].Text != "ORDER-12345" {
		t.Errorf("shrink: %+v", ts)
	}
	// Too long for two lines even at size 1: cut with an ellipsis, and a
	// warning.
	long := strings.Repeat("word ", 25)
	lay := place(t, p, label.Text{Text: long, Size: 3})
	ts = texts(lay)
	if len(ts) != 2 || ts[0].Size != 1 || !strings.HasSuffix(ts[1].Text, "…") { // cp1252 has …
		t.Errorf("ellipsis: %+v", ts)
	}
	for _, it := range ts {
		if utf8.RuneCountInString(it.Text)*16 > 384 {
			t.Errorf("%q wider than the paper", it.Text)
		}
	}
	if len(lay.Warnings) != 1 || !strings.Contains(lay.Warnings[0], "shortened") {
		t.Errorf("warnings %q", lay.Warnings)
	}
}

// A CODE128 that cannot be one is a QR code, never nothing.
func TestCodeFallsBackToQR(t *testing.T) {
	p := label.Profile{Language: label.ZPL, WidthDots: 384}
	for _, data := range []string{"Ü-1", "ORD-2026-0012345"} {
		lay := place(t, p, label.Code128{Data: data})
		it := lay.Pages[0].Items[0]
		if it.Kind != QRItem || it.Data != data || len(lay.Warnings) != 1 || !strings.Contains(lay.Warnings[0], "QR code") {
			t.Errorf("%q: %v %q, warnings %q", data, it.Kind, it.Data, lay.Warnings)
		}
	}
	// 80 mm takes the 16-character order as CODE128.
	lay := place(t, label.Profile{Language: label.ZPL, WidthDots: 576}, label.Code128{Data: "ORD-2026-0012345"})
	if it := lay.Pages[0].Items[0]; it.Kind != Code128Item || len(lay.Warnings) != 0 {
		t.Errorf("576: %v, %q", it.Kind, lay.Warnings)
	}
}

// Quiet zones: no box enters a code's quiet zone; ZPL's ^BQ offset is
// part of the QR's place; boxes never overlap.
func TestQuietZonesAndNoOverlap(t *testing.T) {
	for _, lg := range label.Languages {
		for _, w := range []int{384, 406, 576, 812} {
			p := label.Profile{Language: lg, WidthDots: w}
			lay := place(t, p,
				label.Text{Text: "Total", Right: "55.00 EUR", Bold: true, Underline: true},
				label.QR{Data: "https://fieldkit.example/r/8F3KQ2XH7M4P9TWZAB", Module: 6, Align: label.Center},
				label.Code128{Data: "A-1042", Height: 48, Align: label.Center},
				label.QR{Data: "x", Module: 4, Align: label.Left},
				label.Text{Text: "after"})
			items := lay.Pages[0].Items
			for a := range items {
				if items[a].Box.Min.X < 0 || items[a].Box.Max.X > w {
					t.Errorf("%s %d: %v %v off the paper", lg, w, items[a].Kind, items[a].Box)
				}
				for b := range items {
					if a == b {
						continue
					}
					if items[a].Quiet.Overlaps(items[b].Box) {
						t.Errorf("%s %d: %v %v enters the quiet zone %v of %v", lg, w, items[b].Kind, items[b].Box, items[a].Quiet, items[a].Kind)
					}
				}
			}
			if lg == label.ZPL {
				// The QR's field origin (10 dots above the symbol)
				// is below the text.
				qr := items[2]
				if qr.Box.Min.Y-lay.Metrics.QROffset < items[1].Box.Max.Y {
					t.Errorf("zpl %d: ^FO of the QR at %d, above the text's bottom %d", w, qr.Box.Min.Y-10, items[1].Box.Max.Y)
				}
			}
		}
	}
}

// On die-cut stock every page is the stock's length and content that does
// not fit goes on the next label; nothing is stretched.
func TestDieCutPages(t *testing.T) {
	p := label.Profile{Language: label.TSPL, WidthDots: 384, Media: label.Media{WidthMM: 50, HeightMM: 30, GapMM: 3}}
	var els []label.Element
	for i := 0; i < 12; i++ {
		els = append(els, label.Text{Text: "line"})
	}
	els = append(els, label.QR{Data: "https://fieldkit.example/r/8F3KQ2", Module: 4})
	lay := place(t, p, els...)
	if len(lay.Pages) < 2 {
		t.Fatalf("%d pages", len(lay.Pages))
	}
	h := p.PageDots()
	if h != 240 {
		t.Fatalf("30 mm at 203 dpi = %d dots", h)
	}
	for i, pg := range lay.Pages {
		if pg.Height != h {
			t.Errorf("page %d: %d dots long, the stock is %d", i, pg.Height, h)
		}
		for _, it := range pg.Items {
			if it.Box.Max.Y > h-lay.Metrics.Margin || it.Box.Min.Y < 0 {
				t.Errorf("page %d: %v %v runs past the label", i, it.Kind, it.Box)
			}
		}
	}
	// An element taller than the label is refused, not stretched.
	_, err := Place(label.Label{Elements: []label.Element{label.QR{Data: strings.Repeat("q", 300), Module: 4}}}, p)
	if err == nil || !strings.Contains(err.Error(), "label holds") {
		t.Errorf("tall QR on 30 mm labels: %v", err)
	}
}

// Characters the printer's font lacks are drawn; what no font has is
// counted.
func TestBitmapAndUnprintable(t *testing.T) {
	p := label.Profile{Language: label.ESCPOS, WidthDots: 384, CodePage: "cp858"}
	lay := place(t, p, label.Text{Text: "Наталья", Size: 2}, label.Text{Text: "Ada 🎉"})
	items := lay.Pages[0].Items
	if items[0].Kind != BitmapItem || items[0].Bitmap == nil || items[0].Box.Dy() != 48 {
		t.Fatalf("cyrillic: %+v", items[0])
	}
	ink := 0
	for _, b := range items[0].Bitmap.Bits {
		for ; b != 0; b &= b - 1 {
			ink++
		}
	}
	if ink < 200 {
		t.Errorf("cyrillic bitmap has %d black dots", ink)
	}
	if items[1].Kind != TextItem || items[1].Text != "Ada ?" || lay.Unprintable != 1 || len(lay.Warnings) != 1 {
		t.Errorf("emoji: %+v, unprintable %d, warnings %q", items[1], lay.Unprintable, lay.Warnings)
	}
	// ZPL's font 0 prints Polish itself; Cyrillic goes as a graphic.
	lay = place(t, label.Profile{Language: label.ZPL}, label.Text{Text: "Zażółć"}, label.Text{Text: "Гончарова"})
	if k := lay.Pages[0].Items[0].Kind; k != TextItem {
		t.Errorf("polish on zpl: %v", k)
	}
	if k := lay.Pages[0].Items[1].Kind; k != BitmapItem {
		t.Errorf("cyrillic on zpl: %v", k)
	}
}

func FuzzPlace(f *testing.F) {
	f.Add("A-1042", "25.00 €", uint8(4), "Наталья 🎉 ^~", uint16(384), uint8(0))
	f.Add(strings.Repeat("W", 60), "", uint8(8), "ORD-2026-0012345", uint16(96), uint8(1))
	f.Add("x", "y", uint8(1), "Ü-1", uint16(812), uint8(2))
	f.Fuzz(func(t *testing.T, text, right string, size uint8, code string, width uint16, lg uint8) {
		p := label.Profile{Language: label.Languages[int(lg)%3], WidthDots: 96 + int(width)%2000}
		l := label.Label{Elements: []label.Element{
			label.Text{Text: text, Right: right, Size: 1 + int(size)%8, Bold: size%2 == 0},
			label.Code128{Data: code},
			label.QR{Data: code + text},
		}}
		if l.Validate() != nil {
			return
		}
		lay, err := Place(l, p)
		if err != nil {
			return
		}
		for _, pg := range lay.Pages {
			for a, ia := range pg.Items {
				if ia.Box.Min.X < 0 || ia.Box.Max.X > p.WidthDots || ia.Box.Empty() {
					t.Fatalf("%v %v off a %d-dot paper", ia.Kind, ia.Box, p.WidthDots)
				}
				for b, ib := range pg.Items {
					if a != b && ia.Quiet.Overlaps(ib.Box) && !(ia.Kind == TextItem && ib.Kind == TextItem && ia.Box.Intersect(ib.Box) == image.Rectangle{}) {
						t.Fatalf("%v %v overlaps %v %v", ia.Kind, ia.Box, ib.Kind, ib.Box)
					}
				}
			}
		}
	})
}
