package layout

import (
	"image"
	"image/draw"

	"golang.org/x/image/font"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"
)

// Bitmap is a 1-bit image: rows of (W+7)/8 bytes, most significant bit
// leftmost, 1 = black (the languages' own polarity is the encoders'
// business).
type Bitmap struct {
	W, H int
	Bits []byte
}

// Stride is the bytes per row.
func (b *Bitmap) Stride() int { return (b.W + 7) / 8 }

// At reports whether the dot at x, y is black.
func (b *Bitmap) At(x, y int) bool {
	if x < 0 || y < 0 || x >= b.W || y >= b.H {
		return false
	}
	return b.Bits[y*b.Stride()+x/8]&(0x80>>(x%8)) != 0
}

// emFor is the em size that fits a line of the Go fonts (ascent plus
// descent, about 1.16 em) into a cell h dots tall.
func emFor(h int) int { return max(h*100/118, 6) }

// outlineWidth measures s in the Go fonts for a cell h dots tall.
func outlineWidth(s string, h int, bold bool) int {
	reg, b := fonts()
	f := reg
	if bold {
		f = b
	}
	return outlineAdvance(f, s, emFor(h))
}

// renderOutline draws s in a cell h dots tall, w dots wide, with the Go
// fonts, thresholded to black and white.
func renderOutline(s string, w, h int, bold bool) *Bitmap {
	reg, b := fonts()
	f := reg
	if bold {
		f = b
	}
	em := emFor(h)
	face, err := opentype.NewFace(f, &opentype.FaceOptions{Size: float64(em), DPI: 72, Hinting: font.HintingFull})
	if err != nil {
		// Only a bad size could fail, and emFor never gives one.
		panic("layout: outline face: " + err.Error())
	}
	defer face.Close()
	alpha := image.NewAlpha(image.Rect(0, 0, w, h))
	m := face.Metrics()
	// Centre the ascent+descent box in the cell.
	top := (fixed.I(h) - (m.Ascent + m.Descent)) / 2
	d := font.Drawer{Dst: alpha, Src: image.Opaque, Face: face, Dot: fixed.Point26_6{X: 0, Y: top + m.Ascent}}
	d.DrawString(s)
	bm := &Bitmap{W: w, H: h}
	bm.Bits = make([]byte, bm.Stride()*h)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			if alpha.AlphaAt(x, y).A >= 0x80 {
				bm.Bits[y*bm.Stride()+x/8] |= 0x80 >> (x % 8)
			}
		}
	}
	return bm
}

// Crop returns the bitmap cut to the columns that hold ink, widened to
// whole bytes, and the x offset of the cut; nil for a blank bitmap.
func (b *Bitmap) Crop() (*Bitmap, int) {
	x0, x1 := b.W, -1
	for y := 0; y < b.H; y++ {
		for x := 0; x < b.W; x++ {
			if b.At(x, y) {
				x0, x1 = min(x0, x), max(x1, x)
			}
		}
	}
	if x1 < 0 {
		return nil, 0
	}
	x0 &^= 7
	out := &Bitmap{W: (x1 - x0 + 8) &^ 7, H: b.H}
	out.W = min(out.W, b.W-x0)
	out.Bits = make([]byte, out.Stride()*out.H)
	for y := 0; y < b.H; y++ {
		copy(out.Bits[y*out.Stride():(y+1)*out.Stride()], b.Bits[y*b.Stride()+x0/8:])
	}
	return out, x0
}

// Image returns the bitmap as an image (for previews).
func (b *Bitmap) Image() *image.Gray {
	img := image.NewGray(image.Rect(0, 0, b.W, b.H))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	for y := 0; y < b.H; y++ {
		for x := 0; x < b.W; x++ {
			if b.At(x, y) {
				img.Pix[y*img.Stride+x] = 0
			}
		}
	}
	return img
}
