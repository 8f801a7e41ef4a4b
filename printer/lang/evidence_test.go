package lang_test

import (
	"bytes"
	"fmt"
	"image"
	"image/draw"
	"image/png"
	"strings"
	"testing"

	"github.com/ingridhq/zebrash"
	"github.com/ingridhq/zebrash/drawers"
	"github.com/makiuchi-d/gozxing"
	multiqr "github.com/makiuchi-d/gozxing/multi/qrcode"
	"github.com/makiuchi-d/gozxing/oned"
	"github.com/makiuchi-d/gozxing/qrcode"

	"fieldkit/printer/fake"
	"fieldkit/printer/label"
	"fieldkit/printer/lang"
	"fieldkit/printer/layout"
	"fieldkit/printer/template"
	"fieldkit/printer/zpl"
)

// matrix is the pickup data the evidence test prints: the reference label
// and the names, letters, orders and scripts that broke labels before.
func matrix() []struct {
	name string
	p    template.Pickup
} {
	ref := template.SamplePickup()
	with := func(f func(*template.Pickup)) template.Pickup {
		p := ref
		p.Items = append([]template.Item(nil), ref.Items...)
		f(&p)
		return p
	}
	return []struct {
		name string
		p    template.Pickup
	}{
		{"reference", ref},
		{"long names", with(func(p *template.Pickup) {
			p.Buyer = "Maximiliana Alexandra Featherstonehaugh-Worthington"
			p.Items[0].Name = "Limited edition heavyweight organic cotton tee, washed black, size XXL"
		})},
		{"wide letters", with(func(p *template.Pickup) {
			p.Buyer = "WWWWWWWWWW MMMMMMMMMM"
			p.Items[1].Name = "WMWMWMWMWMWMWMWMWMWMWMWM"
			p.Total = 99999999
		})},
		{"long order", with(func(p *template.Pickup) { p.Order = "ORD-2026-0012345" })},
		{"german", with(func(p *template.Pickup) {
			p.Order = "Ü-1"
			p.Buyer = "Jürgen Großmann-Käßbohrer"
			p.Items[0].Name = "Größe XL Übergangsjacke für 12 €"
		})},
		{"french", with(func(p *template.Pickup) {
			p.Buyer = "Hélène Dupré-Lefèvre"
			p.Items[0].Name = "Œuvre « cœur » — édition limitée"
		})},
		{"polish", with(func(p *template.Pickup) {
			p.Buyer = "Łukasz Wójcik-Żółkiewski"
			p.Items[0].Name = "Zażółć gęślą jaźń"
		})},
		{"cyrillic", with(func(p *template.Pickup) {
			p.Buyer = "Наталья Гончарова"
			p.Items[0].Name = "Футболка чёрная"
		})},
		{"emoji", with(func(p *template.Pickup) {
			p.Buyer = "Ada 🎉 Lovelace"
			p.Items[2].Name = "Tote bag 👜"
		})},
		{"zpl control", with(func(p *template.Pickup) {
			p.Order = "A^1~2_3"
			p.Buyer = "Caret^Tilde~Under_score"
			p.QR = "https://fieldkit.example/r/^~_?a=1"
		})},
	}
}

var widths = []int{384, 406, 576, 812}

// TestEvidenceMatrix prints the matrix at four widths in each language and
// checks the result with parties other than this project's encoders: the
// ZPL is rendered by zebrash (an independent ZPL renderer), the ESC/POS
// and TSPL previews are drawn from the layout, and every QR and CODE128
// is decoded by gozxing and must say what was asked. No two items' ink
// may touch, nor enter a code's quiet zone, nor leave the paper.
func TestEvidenceMatrix(t *testing.T) {
	if testing.Short() {
		t.Skip("renders 120 labels")
	}
	for _, lg := range label.Languages {
		decoded, want, whole := 0, 0, 0
		for _, m := range matrix() {
			for _, w := range widths {
				prof := label.Profile{Language: lg, WidthDots: w}
				name := fmt.Sprintf("%s/%s/%d", lg, m.name, w)
				l, err := template.Render(m.p, prof)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				j, err := lang.Render(l, prof)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				pages := renderPages(t, name, lg, j)
				// The codes asked for: the receipt QR and the order
				// (as CODE128 or, with a warning, as QR).
				asked := []string{m.p.QR, m.p.Order}
				got := map[string]bool{}
				for k, pg := range j.Layout.Pages {
					for _, it := range pg.Items {
						if it.Kind != layout.QRItem && it.Kind != layout.Code128Item {
							continue
						}
						text, err := decode(pages[k], it)
						if err != nil {
							t.Errorf("%s: %v %q at %v does not decode: %v", name, it.Kind, it.Data, it.Box, err)
							continue
						}
						if text != it.Data {
							t.Errorf("%s: %v decodes to %q, want %q", name, it.Kind, text, it.Data)
							continue
						}
						got[text] = true
					}
				}
				for _, a := range asked {
					for _, pg := range pages {
						if wholeImage(pg)[a] {
							whole++
							break
						}
					}
					want++
					if got[a] {
						decoded++
					} else {
						t.Errorf("%s: no code decodes to %q", name, a)
					}
				}
				if !label.IsCode128(m.p.Order) || strings.HasPrefix(m.name, "long order") && w < 576 {
					if !strings.Contains(strings.Join(j.Warnings, "\n"), "printed as a QR code") {
						t.Errorf("%s: order %q printed without CODE128 and no warning: %q", name, m.p.Order, j.Warnings)
					}
				}
				if m.name == "cyrillic" {
					// Printed as text or bitmap, never as "?".
					bitmaps := 0
					for _, it := range j.Layout.Pages[0].Items {
						if strings.Contains(it.Text, "?") {
							t.Errorf("%s: %q", name, it.Text)
						}
						if it.Kind == layout.BitmapItem {
							bitmaps++
						}
					}
					if bitmaps != 2 || len(j.Warnings) != 0 {
						t.Errorf("%s: %d bitmaps (want the name and the item), warnings %q", name, bitmaps, j.Warnings)
					}
				}
				if lg != label.ZPL {
					checkBytesAgree(t, name, lg, j)
				}
				checkInk(t, name, lg, j)
			}
		}
		t.Logf("%s: %d of %d asked codes decoded in their quiet zones; %d from whole labels", lg, decoded, want, whole)
	}
}

// renderPages draws each page: zebrash for ZPL, the layout preview for the
// others.
func renderPages(t *testing.T, name string, lg label.Language, j lang.Job) []*image.Gray {
	if lg == label.ZPL {
		return zebrashRender(t, name, j.Bytes, j.Layout.Profile.WidthDots, j.Layout.Pages)
	}
	return fake.RenderLayout(j.Layout)
}

func zebrashRender(t *testing.T, name string, zplBytes []byte, width int, pages []layout.Page) []*image.Gray {
	t.Helper()
	infos, err := zebrash.NewParser().Parse(zplBytes)
	if err != nil {
		t.Fatalf("%s: zebrash parse: %v", name, err)
	}
	if len(infos) != len(pages) {
		t.Fatalf("%s: zebrash sees %d labels, the layout has %d pages", name, len(infos), len(pages))
	}
	var out []*image.Gray
	for k, info := range infos {
		var buf bytes.Buffer
		err := zebrash.NewDrawer().DrawLabelAsPng(info, &buf, drawers.DrawerOptions{
			LabelWidthMm: float64(width) / 8, LabelHeightMm: float64(pages[k].Height) / 8, Dpmm: 8})
		if err != nil {
			t.Fatalf("%s: zebrash draw: %v", name, err)
		}
		img, err := png.Decode(&buf)
		if err != nil {
			t.Fatal(err)
		}
		g := image.NewGray(img.Bounds())
		draw.Draw(g, g.Bounds(), img, img.Bounds().Min, draw.Src)
		out = append(out, g)
	}
	return out
}

// decode crops the item's quiet zone out of the page (so that anything
// drawn into it spoils the read) and decodes it with gozxing.
func decode(page *image.Gray, it layout.Item) (string, error) {
	r := it.Quiet.Intersect(page.Bounds())
	crop := image.NewGray(image.Rect(0, 0, r.Dx(), r.Dy()))
	draw.Draw(crop, crop.Bounds(), page, r.Min, draw.Src)
	bmp, err := gozxing.NewBinaryBitmapFromImage(crop)
	if err != nil {
		return "", err
	}
	hints := map[gozxing.DecodeHintType]interface{}{gozxing.DecodeHintType_TRY_HARDER: true}
	var res *gozxing.Result
	if it.Kind == layout.QRItem {
		hints[gozxing.DecodeHintType_CHARACTER_SET] = "UTF-8"
		res, err = qrcode.NewQRCodeReader().Decode(bmp, hints)
	} else {
		res, err = oned.NewCode128Reader().Decode(bmp, hints)
	}
	if err != nil {
		return "", err
	}
	return res.GetText(), nil
}

// checkInk renders every item alone, finds the ink it really leaves (for
// ZPL as zebrash draws it), and checks the items apart.
func checkInk(t *testing.T, name string, lg label.Language, j lang.Job) {
	t.Helper()
	lay := j.Layout
	w := lay.Profile.WidthDots
	for k, pg := range lay.Pages {
		inks := make([]image.Rectangle, len(pg.Items))
		for i, it := range pg.Items {
			// The item alone on a strip of paper from pad dots above
			// its box (and the printer's QR offset) to pad below: where
			// it lands does not depend on how far down the label it is,
			// and a strip renders faster than the whole label.
			const pad = 64
			top := max(it.Box.Min.Y-pad-lay.Metrics.QROffset, 0)
			moved := it
			moved.Box = it.Box.Sub(image.Pt(0, top))
			moved.Quiet = it.Quiet.Sub(image.Pt(0, top))
			single := *lay
			single.Pages = []layout.Page{{Items: []layout.Item{moved}, Height: min(pg.Height-top, moved.Box.Max.Y+pad)}}
			var img *image.Gray
			if lg == label.ZPL {
				b, err := zpl.EncodeLayout(&single)
				if err != nil {
					t.Fatal(err)
				}
				img = zebrashRender(t, name, b, w, single.Pages)[0]
			} else {
				img = fake.RenderPage(&single, single.Pages[0])
			}
			inks[i] = inkBox(img)
			if !inks[i].Empty() {
				inks[i] = inks[i].Add(image.Pt(0, top))
			}
			if inks[i].Empty() {
				t.Errorf("%s: page %d: %v %q draws nothing", name, k, it.Kind, it.Text+it.Data)
				continue
			}
			if inks[i].Min.X < 0 || inks[i].Max.X > w || inks[i].Min.Y < 0 || inks[i].Max.Y > pg.Height {
				t.Errorf("%s: page %d: %v %q inks %v, off the %d×%d label", name, k, it.Kind, it.Text+it.Data, inks[i], w, pg.Height)
			}
			// A right-aligned field that the printer drew left of where
			// it was measured would be clipped or ragged.
			if it.Kind == layout.TextItem && inks[i].Max.X >= w && it.Just != label.Right {
				t.Errorf("%s: %q reaches the edge", name, it.Text)
			}
		}
		for a := range pg.Items {
			for b := a + 1; b < len(pg.Items); b++ {
				if inks[a].Empty() || inks[b].Empty() {
					continue
				}
				if inks[a].Overlaps(inks[b]) {
					t.Errorf("%s: page %d: %v %q ink %v overlaps %v %q ink %v", name, k,
						pg.Items[a].Kind, pg.Items[a].Text+pg.Items[a].Data, inks[a], pg.Items[b].Kind, pg.Items[b].Text+pg.Items[b].Data, inks[b])
				}
				for _, pair := range [][2]int{{a, b}, {b, a}} {
					c, o := pg.Items[pair[0]], pair[1]
					if q := quietOf(c, inks[pair[0]]); !q.Empty() && q.Overlaps(inks[o]) {
						t.Errorf("%s: page %d: %v %q ink %v enters the quiet zone %v of %v %q", name, k,
							pg.Items[o].Kind, pg.Items[o].Text+pg.Items[o].Data, inks[o], q, c.Kind, c.Data)
					}
				}
			}
		}
	}
}

// checkBytesAgree decodes the bytes with the fake printer, which models
// how ESC/POS and TSPL printers move the paper and place codes, and finds
// every code where the layout (and so the preview) put it.
func checkBytesAgree(t *testing.T, name string, lg label.Language, j lang.Job) {
	t.Helper()
	labels, err := fake.Decode(string(lg), j.Bytes, j.Layout.Profile.WidthDots)
	if err != nil || len(labels) != len(j.Layout.Pages) {
		t.Fatalf("%s: the fake printer makes %d labels of the bytes, the layout has %d pages (%v)", name, len(labels), len(j.Layout.Pages), err)
	}
	for k, pg := range j.Layout.Pages {
		var want, got []image.Point
		for _, it := range pg.Items {
			if it.Kind == layout.QRItem || it.Kind == layout.Code128Item {
				want = append(want, it.Box.Min)
			}
		}
		for _, op := range labels[k].Ops {
			switch op := op.(type) {
			case fake.QR:
				got = append(got, image.Pt(op.X, op.Y))
			case fake.Barcode:
				got = append(got, image.Pt(op.X, op.Y))
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: page %d: the printer puts codes at %v, the layout at %v", name, k, got, want)
		}
		if len(labels[k].Unknown) != 0 {
			t.Errorf("%s: page %d: commands the fake printer does not know: %q", name, k, labels[k].Unknown)
		}
	}
}

// quietOf is the quiet zone around a code's measured ink: 4 modules
// around a QR, 10 modules either side of the bars of a CODE128.
func quietOf(it layout.Item, ink image.Rectangle) image.Rectangle {
	switch it.Kind {
	case layout.QRItem:
		return ink.Inset(-4 * it.Module)
	case layout.Code128Item:
		bars := ink
		bars.Max.Y = min(bars.Max.Y, it.Box.Min.Y+it.BarHeight)
		return image.Rect(bars.Min.X-10*it.Module, bars.Min.Y, bars.Max.X+10*it.Module, bars.Max.Y)
	}
	return image.Rectangle{}
}

// wholeImage decodes what gozxing finds on a whole label, the way a
// scanner sees it: every QR code and a CODE128.
func wholeImage(page *image.Gray) map[string]bool {
	out := map[string]bool{}
	bmp, err := gozxing.NewBinaryBitmapFromImage(page)
	if err != nil {
		return out
	}
	hints := map[gozxing.DecodeHintType]interface{}{gozxing.DecodeHintType_TRY_HARDER: true, gozxing.DecodeHintType_CHARACTER_SET: "UTF-8"}
	if rs, err := multiqr.NewQRCodeMultiReader().DecodeMultiple(bmp, hints); err == nil {
		for _, r := range rs {
			out[r.GetText()] = true
		}
	}
	if r, err := oned.NewCode128Reader().Decode(bmp, hints); err == nil {
		out[r.GetText()] = true
	}
	return out
}

func inkBox(img *image.Gray) image.Rectangle {
	b := img.Bounds()
	x0, y0, x1, y1 := b.Max.X, b.Max.Y, b.Min.X-1, b.Min.Y-1
	for y := b.Min.Y; y < b.Max.Y; y++ {
		row := img.Pix[(y-b.Min.Y)*img.Stride:]
		for x := b.Min.X; x < b.Max.X; x++ {
			if row[x-b.Min.X] < 0x80 {
				x0, y0, x1, y1 = min(x0, x), min(y0, y), max(x1, x), max(y1, y)
			}
		}
	}
	if x1 < x0 {
		return image.Rectangle{}
	}
	return image.Rect(x0, y0, x1+1, y1+1)
}

// TestFont0Bound checks the layout's measure of ZPL font 0 against an
// independent renderer's font 0: what zebrash draws is never wider than
// what the layout measured, for the widest and narrowest letters, digits,
// German and Polish, at each size the labels use.
func TestFont0Bound(t *testing.T) {
	prof := label.Profile{Language: label.ZPL, WidthDots: 2000}
	for _, s := range []string{"WWWWWWWWWW", "MMMMMMMMMM", "mmmmmmmmmm", "0123456789", "ÄÖÜ äöü ßẞ",
		"Zażółć gęślą jaźń", "iiiiiiiiii", "A-1042 Total 55.00 EUR", "@@@@%%%%", "Œuvre « cœur »"} {
		for size := 1; size <= 4; size++ {
			lay, err := layout.Place(label.Label{Elements: []label.Element{label.Text{Text: s, Size: size}}}, prof)
			if err != nil {
				t.Fatal(err)
			}
			it := lay.Pages[0].Items[0]
			b, err := zpl.EncodeLayout(lay)
			if err != nil {
				t.Fatal(err)
			}
			img := zebrashRender(t, s, b, prof.WidthDots, lay.Pages)[0]
			ink := inkBox(img)
			if ink.Max.X > it.Box.Max.X {
				t.Errorf("%q at size %d: zebrash inks to x %d, the layout measured %d", s, size, ink.Max.X, it.Box.Max.X)
			}
		}
	}
}
