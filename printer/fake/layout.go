package fake

import (
	"errors"
	"image"
	"image/draw"
	"sync"

	xfont "golang.org/x/image/font"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/gomono"
	"golang.org/x/image/font/gofont/gomonobold"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"

	"fieldkit/printer/label"
	"fieldkit/printer/layout"
)

// RenderLayout draws a placed label, one image per page, from the same
// Layout the encoders turn into bytes: what the preview shows is where the
// printer puts it. Text is drawn with the Go fonts (monospaced for the
// ESC/POS and TSPL cell fonts, proportional for ZPL's font 0) so that
// every character the printer prints shows as itself (ü, ß, € on a cp858
// printer), codes with the same encoders the fake printer uses.
func RenderLayout(lay *layout.Layout) []*image.Gray {
	var out []*image.Gray
	for _, pg := range lay.Pages {
		out = append(out, RenderPage(lay, pg))
	}
	return out
}

// RenderPage draws one page of a layout.
func RenderPage(lay *layout.Layout, pg layout.Page) *image.Gray {
	w, h := lay.Profile.WidthDots, min(max(pg.Height, 1), maxDots)
	img := image.NewGray(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	c := &canvas{img: img, budget: 64*w*h + 1<<20}
	for _, it := range pg.Items {
		switch it.Kind {
		case layout.TextItem:
			drawText(img, lay, it)
		case layout.BitmapItem:
			for y := 0; y < it.Bitmap.H; y++ {
				for x := 0; x < it.Bitmap.W; x++ {
					if it.Bitmap.At(x, y) {
						c.fill(it.Box.Min.X+x, it.Box.Min.Y+y, 1, 1)
					}
				}
			}
		case layout.Code128Item:
			codes := code128SetB(it.Data)
			bc := Barcode{X: it.Box.Min.X, Y: it.Box.Min.Y, Data: it.Data, Codes: codes, Module: it.Module, Height: it.BarHeight}
			c.barcode(bc)
			if it.HRI {
				hri := layout.Item{Kind: layout.TextItem, Text: it.Data, Size: 1, CellH: 20, Just: label.Center,
					FieldX: it.Box.Min.X, FieldW: it.Box.Dx()}
				hri.Box = image.Rect(it.Box.Min.X, it.Box.Min.Y+it.BarHeight+2, it.Box.Max.X, it.Box.Min.Y+it.BarHeight+22)
				drawText(img, lay, hri)
			}
		case layout.QRItem:
			q, err := newQR(it.Box.Min.X, it.Box.Min.Y, it.Data, it.Module, it.EC.String()[0])
			if err == nil {
				c.qr(q)
			}
		}
	}
	return img
}

// code128SetB is the symbol values of data in code set B: start B, then
// each character's value.
func code128SetB(data string) []int {
	codes := []int{104}
	for i := 0; i < len(data); i++ {
		codes = append(codes, int(data[i])-32)
	}
	return codes
}

var previewTTF = map[bool]map[bool][]byte{
	true:  {false: gomono.TTF, true: gomonobold.TTF},
	false: {false: goregular.TTF, true: gobold.TTF},
}

// previewFont parses each Go font once.
var previewFont = sync.OnceValue(func() map[[2]bool]*opentype.Font {
	out := map[[2]bool]*opentype.Font{}
	for mono, m := range previewTTF {
		for bold, ttf := range m {
			f, err := opentype.Parse(ttf)
			if err != nil {
				panic("fake: Go font: " + err.Error())
			}
			out[[2]bool{mono, bold}] = f
		}
	}
	return out
})

// drawText draws a text item in its cell, placed as the printer places
// it: at the measured box for cell fonts, justified in its field for
// ZPL's font 0.
func drawText(img *image.Gray, lay *layout.Layout, it layout.Item) {
	mono := lay.Metrics.CellW != 0
	f := previewFont()[[2]bool{mono, it.Bold}]
	ch := it.CellH
	size := float64(ch) * 100 / 118
	if mono {
		// Go Mono advances 0.6 em: size the em so a glyph fills its cell.
		size = min(size, float64(lay.Metrics.CellW*it.Size)/0.6)
	}
	face, err := opentype.NewFace(f, &opentype.FaceOptions{Size: size, DPI: 72, Hinting: xfont.HintingFull})
	if err != nil {
		return
	}
	defer face.Close()
	d := xfont.Drawer{Dst: img, Src: image.Black, Face: face}
	adv := d.MeasureString(it.Text).Ceil()
	x := it.Box.Min.X
	if !mono || it.Box.Dx() == 0 {
		free := it.FieldW - adv
		switch it.Just {
		case label.Center:
			x = it.FieldX + max(free, 0)/2
		case label.Right:
			x = it.FieldX + max(free, 0)
		default:
			x = it.Box.Min.X
		}
	}
	m := face.Metrics()
	top := (fixed.I(ch) - (m.Ascent + m.Descent)) / 2
	d.Dot = fixed.Point26_6{X: fixed.I(x), Y: fixed.I(it.Box.Min.Y) + top + m.Ascent}
	d.DrawString(it.Text)
	if it.Underline {
		c := &canvas{img: img, budget: 1 << 20}
		c.fill(it.Box.Min.X, it.Box.Min.Y+ch, it.Box.Dx(), 2)
	}
}

// LayoutPNG is RenderLayout with the pages stacked top to bottom in one
// PNG, separated by a grey band as wide as the stock's gap: what `print
// --preview` writes.
func LayoutPNG(lay *layout.Layout) ([]byte, error) {
	imgs := RenderLayout(lay)
	if len(imgs) == 0 {
		return nil, errors.New("fake printer: the label has no page to draw")
	}
	gap := max(lay.Profile.GapDotsOf(), 4)
	w, h := 0, 0
	for _, img := range imgs {
		w = max(w, img.Bounds().Dx())
		h += img.Bounds().Dy() + gap
	}
	h -= gap
	sheet := image.NewGray(image.Rect(0, 0, w, h))
	draw.Draw(sheet, sheet.Bounds(), &image.Uniform{C: paperGray}, image.Point{}, draw.Src)
	y := 0
	for _, img := range imgs {
		r := image.Rect(0, y, img.Bounds().Dx(), y+img.Bounds().Dy())
		draw.Draw(sheet, r, img, img.Bounds().Min, draw.Src)
		y += img.Bounds().Dy() + gap
	}
	return encodePNG(sheet)
}
