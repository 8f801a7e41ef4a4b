package fake

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
)

// renderLabel draws l on white paper widthDots wide. The height is what the
// label declared or what its ops reach, whichever is larger, capped at
// maxDots.
func renderLabel(l *Label, widthDots int) *image.Gray {
	w := widthDots
	if l.Width > 0 && l.Width < w {
		w = l.Width
	}
	h := l.Height
	for _, op := range l.Ops {
		_, y := op.extent()
		if y > h {
			h = y
		}
	}
	h += 8 // a little paper after the last line, as the tear bar leaves
	if h > maxDots {
		h = maxDots
	}
	if w < 1 {
		w = 1
	}
	img := image.NewGray(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = 0xFF
	}
	// Overdraw is bounded so that hostile input (thousands of page-sized
	// boxes or glyphs) costs milliseconds, not minutes.
	c := &canvas{img: img, budget: 16*w*h + 1<<20}
	for _, op := range l.Ops {
		switch op := op.(type) {
		case Text:
			c.text(op)
		case Barcode:
			c.barcode(op)
		case QR:
			c.qr(op)
		case Box:
			c.box(op)
		case Raster:
			c.raster(op)
		}
	}
	return img
}

type canvas struct {
	img    *image.Gray
	budget int // pixels left to ink
}

// fill inks the rectangle [x, x+w) × [y, y+h), clipped to the paper.
func (c *canvas) fill(x, y, w, h int) {
	b := c.img.Bounds()
	x0, y0, x1, y1 := max(x, 0), max(y, 0), min(x+w, b.Max.X), min(y+h, b.Max.Y)
	if x0 >= x1 || y0 >= y1 || c.budget <= 0 {
		return
	}
	c.budget -= (x1 - x0) * (y1 - y0)
	for yy := y0; yy < y1; yy++ {
		row := c.img.Pix[yy*c.img.Stride:]
		for xx := x0; xx < x1; xx++ {
			row[xx] = 0
		}
	}
}

func (c *canvas) text(t Text) {
	// The 5×7 glyph sits in a 6×9 grid of the cell: one column of
	// spacing, a row above and a row below for the underline.
	pw, ph := max(1, t.CharW/6), max(1, t.CharH/9)
	oy := (t.CharH - glyphH*ph) / 2
	smear := 0
	if t.Bold {
		smear = max(1, pw/2)
	}
	x := t.X
	for _, r := range t.Text {
		if x >= c.img.Bounds().Max.X || t.Y >= c.img.Bounds().Max.Y {
			return
		}
		g := glyphFor(r)
		for row := 0; row < glyphH; row++ {
			for col := 0; col < glyphW; col++ {
				if g[row]&(1<<(glyphW-1-col)) != 0 {
					c.fill(x+col*pw, t.Y+oy+row*ph, pw+smear, ph)
				}
			}
		}
		if t.Underline {
			c.fill(x, t.Y+oy+(glyphH+1)*ph, t.CharW, max(1, ph/2))
		}
		x += t.CharW
	}
}

func (c *canvas) barcode(b Barcode) {
	for i, bar := range code128Modules(b.Codes) {
		if bar {
			c.fill(b.X+i*b.Module, b.Y, b.Module, b.Height)
		}
	}
}

func (c *canvas) qr(q QR) {
	m, err := qrMatrix(q.Data, q.ECC)
	if err != nil {
		return
	}
	for y, row := range m {
		for x, dark := range row {
			if dark {
				c.fill(q.X+x*q.Module, q.Y+y*q.Module, q.Module, q.Module)
			}
		}
	}
}

func (c *canvas) box(b Box) {
	t := max(1, b.Thick)
	if 2*t >= b.W || 2*t >= b.H {
		c.fill(b.X, b.Y, b.W, b.H)
		return
	}
	c.fill(b.X, b.Y, b.W, t)
	c.fill(b.X, b.Y+b.H-t, b.W, t)
	c.fill(b.X, b.Y, t, b.H)
	c.fill(b.X+b.W-t, b.Y, t, b.H)
}

func (c *canvas) raster(r Raster) {
	stride := (r.W + 7) / 8
	for y := 0; y < r.H; y++ {
		for x := 0; x < r.W; x++ {
			i := y*stride + x/8
			if i < len(r.Bits) && r.Bits[i]&(0x80>>(x%8)) != 0 {
				c.fill(r.X+x, r.Y+y, 1, 1)
			}
		}
	}
}

func encodePNG(img image.Image) ([]byte, error) {
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	if err := enc.Encode(&buf, img); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

var paperGray = color.Gray{Y: 0xC0}
