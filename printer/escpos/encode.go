package escpos

import (
	"errors"
	"fmt"

	"fieldkit/printer/codepage"
	"fieldkit/printer/label"
	"fieldkit/printer/layout"
)

// Control bytes.
const (
	LF  = 0x0a
	ESC = 0x1b
	GS  = 0x1d
	DLE = 0x10
	EOT = 0x04
)

// ErrEncode is wrapped by errors for labels that cannot be printed on the
// profile's paper (a QR or barcode too wide) or a bad profile.
var ErrEncode = errors.New("escpos")

// CodeTable maps code page names to the n of ESC t n (Epson numbering,
// which compatible printers follow):
//
//	ascii        0  (PC437; only ASCII is sent)
//	cp437        0  PC437 USA, standard Europe
//	cp850        2  PC850 Multilingual
//	cp1252      16  WPC1252
//	cp858       19  PC858 Euro
//	iso-8859-15 40  ISO8859-15 (Latin-9)
var CodeTable = map[string]byte{
	"ascii":       0,
	"cp437":       0,
	"cp850":       2,
	"cp1252":      16,
	"cp858":       19,
	"iso-8859-15": 40,
}

// Encode renders l for the printer described by p. The profile's language
// may be empty (it is taken as ESC/POS); its code page must be one in
// CodeTable.
func Encode(l label.Label, p label.Profile) ([]byte, error) {
	lay, err := layout.For(l, p, label.ESCPOS)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrEncode, err)
	}
	return EncodeLayout(lay)
}

// EncodeLayout renders a label placed by package layout. ESC/POS prints
// line after line: the encoder follows the paper as the printer moves it
// and feeds (ESC J) to where the layout puts the next band, which is how
// codes keep their quiet zones.
func EncodeLayout(lay *layout.Layout) ([]byte, error) {
	p := lay.Profile
	page, err := codepage.Lookup(p.CodePage)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrEncode, err)
	}
	n, ok := CodeTable[p.CodePage]
	if !ok {
		return nil, fmt.Errorf("%w: code page %q has no ESC t number", ErrEncode, p.CodePage)
	}
	e := encoder{page: page, size: 1, m: lay.Metrics, width: p.WidthDots}
	e.b = append(e.b, ESC, '@', ESC, 't', n)
	for _, pg := range lay.Pages {
		y := 0 // where the paper is, from the top of this page
		for _, band := range pg.Lines() {
			top := band[0].Box.Min.Y
			for top > y {
				step := min(top-y, 255)
				e.b = append(e.b, ESC, 'J', byte(step))
				y += step
			}
			y += e.band(band)
		}
		// Feeds after the last band (a feed before the cut).
		for end := pg.Height; end > y; {
			step := min(end-y, 255)
			e.b = append(e.b, ESC, 'J', byte(step))
			y += step
		}
		if pg.Cut {
			e.b = append(e.b, GS, 'V', 65, 0)
		}
	}
	return e.b, nil
}

// encoder tracks the styles in force on the printer, as left by ESC @ and
// the commands sent since, so that each is sent only when it changes.
type encoder struct {
	b         []byte
	page      *codepage.Page
	m         layout.Metrics
	width     int
	align     label.Align
	size      int
	bold, ul  bool
	barHeight int
	barModule int
	hri       byte
}

// band prints one band and returns how far the printer moved the paper.
func (e *encoder) band(band []layout.Item) int {
	it := band[0]
	switch it.Kind {
	case layout.TextItem:
		if len(band) == 1 {
			e.setAlign(it.Just)
		} else {
			e.setAlign(label.Left)
		}
		e.style(it)
		x := 0
		for _, t := range band {
			if len(band) > 1 {
				// Up to the measured position: spaces of the same
				// size, the font being monospaced.
				cw := e.m.CellW * t.Size
				for ; x+cw <= t.Box.Min.X; x += cw {
					e.b = append(e.b, ' ')
				}
			}
			text, _ := e.page.Encode(t.Text)
			e.b = append(e.b, text...)
			x += len(text) * e.m.CellW * t.Size
		}
		e.b = append(e.b, LF)
		return e.m.LineAdvance(it.Size)
	case layout.BitmapItem:
		// A full-width raster at the left edge places the bitmap to the
		// dot, whatever the printer's idea of justification.
		e.setAlign(label.Left)
		stride := (e.width + 7) / 8
		bm := it.Bitmap
		e.b = append(e.b, GS, 'v', '0', 0, byte(stride), byte(stride>>8), byte(bm.H), byte(bm.H>>8))
		row := make([]byte, stride)
		for y := 0; y < bm.H; y++ {
			clear(row)
			for x := 0; x < bm.W; x++ {
				if bm.At(x, y) {
					xx := it.Box.Min.X + x
					if xx < e.width {
						row[xx/8] |= 0x80 >> (xx % 8)
					}
				}
			}
			e.b = append(e.b, row...)
		}
		return bm.H
	case layout.Code128Item:
		e.setAlign(alignOf(it, e.width))
		if h := it.BarHeight; h != e.barHeight {
			e.b = append(e.b, GS, 'h', byte(h))
			e.barHeight = h
		}
		if it.Module != e.barModule {
			e.b = append(e.b, GS, 'w', byte(it.Module))
			e.barModule = it.Module
		}
		hri := byte(0)
		if it.HRI {
			hri = 2
		}
		if hri != e.hri {
			e.b = append(e.b, GS, 'H', hri)
			e.hri = hri
		}
		data := code128B(it.Data)
		e.b = append(e.b, GS, 'k', 73, byte(len(data)))
		e.b = append(e.b, data...)
		if it.HRI {
			return it.BarHeight + e.m.CellH
		}
		return it.BarHeight
	case layout.QRItem:
		e.setAlign(alignOf(it, e.width))
		// Model 2 is the printers' default (fn 165), so it is not sent.
		e.b = append(e.b, qrFn(67, byte(it.Module))...)                   // module size
		e.b = append(e.b, qrFn(69, ecByte(it.EC))...)                     // EC level
		e.b = append(e.b, qrFn(80, append([]byte{48}, it.Data...)...)...) // store
		e.b = append(e.b, qrFn(81, 48)...)                                // print
		return it.Box.Dy()
	}
	return 0
}

// alignOf is the justification that puts a code where the layout placed
// it (ESC/POS positions codes only by justification).
func alignOf(it layout.Item, width int) label.Align {
	w := it.Box.Dx()
	switch it.Box.Min.X {
	case 0:
		return label.Left
	case width - w:
		return label.Right
	}
	return label.Center
}

func (e *encoder) style(it layout.Item) {
	if s := it.Size; s != e.size {
		e.b = append(e.b, GS, '!', byte((s-1)<<4|(s-1)))
		e.size = s
	}
	if it.Bold != e.bold {
		e.b = append(e.b, ESC, 'E', onOff(it.Bold))
		e.bold = it.Bold
	}
	if it.Underline != e.ul {
		e.b = append(e.b, ESC, '-', onOff(it.Underline))
		e.ul = it.Underline
	}
}

func (e *encoder) setAlign(a label.Align) {
	if a != e.align {
		e.b = append(e.b, ESC, 'a', byte(a))
		e.align = a
	}
}

func onOff(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// qrFn builds GS ( k pL pH cn=49 fn args: the length counts cn, fn and
// the arguments.
func qrFn(fn byte, args ...byte) []byte {
	n := len(args) + 2
	out := []byte{GS, '(', 'k', byte(n), byte(n >> 8), 49, fn}
	return append(out, args...)
}

// code128B prefixes the data with the code set B selector and doubles
// '{', which introduces code set and function characters in GS k m=73.
func code128B(data string) []byte {
	out := []byte{'{', 'B'}
	for i := 0; i < len(data); i++ {
		if data[i] == '{' {
			out = append(out, '{')
		}
		out = append(out, data[i])
	}
	return out
}

// ecByte is the GS ( k function 169 argument: 48 L, 49 M, 50 Q, 51 H.
func ecByte(ec label.ECLevel) byte {
	switch ec {
	case label.ECL:
		return 48
	case label.ECQ:
		return 50
	case label.ECH:
		return 51
	}
	return 49
}
