package zpl

import (
	"bytes"
	"errors"
	"fmt"

	"fieldkit/printer/codepage"
	"fieldkit/printer/label"
	"fieldkit/printer/layout"
)

// ErrEncode is wrapped by errors for labels that do not fit the profile.
var ErrEncode = errors.New("zpl")

// CharSet maps code page names to the n of ^CI n:
//
//	ascii    0  USA 1 (ASCII in the lower half)
//	cp850   13  Zebra code page 850
//	cp1252  27  Zebra code page 1252
//	utf-8   28  Unicode UTF-8
var CharSet = map[string]int{"ascii": 0, "cp850": 13, "cp1252": 27, "utf-8": 28}

// Encode renders l for the printer described by p. The profile's language
// may be empty (taken as ZPL).
func Encode(l label.Label, p label.Profile) ([]byte, error) {
	lay, err := layout.For(l, p, label.ZPL)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrEncode, err)
	}
	return EncodeLayout(lay)
}

// EncodeLayout renders a label placed by package layout: one format per
// page, every field at the layout's coordinates. Text is justified by the
// printer (^FB with L, C or R) in the field the layout measured, so a
// proportional font 0 lines up at the right edge; text the resident font
// lacks comes as a graphic field (^GFA).
func EncodeLayout(lay *layout.Layout) ([]byte, error) {
	p := lay.Profile
	ci, ok := CharSet[p.CodePage]
	if !ok {
		return nil, fmt.Errorf("%w: code page %q has no ^CI number", ErrEncode, p.CodePage)
	}
	page, err := codepage.Lookup(p.CodePage)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrEncode, err)
	}
	var b bytes.Buffer
	for _, pg := range lay.Pages {
		fmt.Fprintf(&b, "^XA^CI%d^PW%d^LL%d", ci, p.WidthDots, pg.Height)
		font := 0 // the ^CF height in force
		for _, it := range pg.Items {
			switch it.Kind {
			case layout.TextItem:
				if it.CellH != font {
					fmt.Fprintf(&b, "^CF0,%d", it.CellH)
					font = it.CellH
				}
				text, _ := page.Encode(it.Text)
				data, hex := fieldData(text)
				field := func(x, w int) {
					fmt.Fprintf(&b, "^FO%d,%d", x, it.Box.Min.Y)
					if it.Just != label.Left || w != p.WidthDots-x {
						fmt.Fprintf(&b, "^FB%d,1,0,%c", w, "LCR"[it.Just])
					}
					if hex {
						b.WriteString("^FH")
					}
					b.WriteString("^FD")
					b.Write(data)
					b.WriteString("^FS")
				}
				x, w := it.FieldX, it.FieldW
				if it.Just == label.Left {
					// Left text needs no block: it starts where measured.
					x, w = it.Box.Min.X, p.WidthDots-it.Box.Min.X
				}
				field(x, w)
				if it.Bold {
					// Font 0 has no bold: strike again 2 dots over,
					// inside the field.
					if it.Just == label.Right {
						field(x, w-lay.Metrics.BoldExtra)
					} else {
						field(x+lay.Metrics.BoldExtra, w-lay.Metrics.BoldExtra)
					}
				}
				if it.Underline {
					fmt.Fprintf(&b, "^FO%d,%d^GB%d,2,2^FS", it.Box.Min.X, it.Box.Max.Y-2, it.Box.Dx())
				}
			case layout.BitmapItem:
				bm := it.Bitmap
				n := bm.Stride() * bm.H
				fmt.Fprintf(&b, "^FO%d,%d^GFA,%d,%d,%d,", it.Box.Min.X, it.Box.Min.Y, n, n, bm.Stride())
				hexRows(&b, bm)
				b.WriteString("^FS")
			case layout.Code128Item:
				hri := "N"
				if it.HRI {
					hri = "Y"
				}
				fmt.Fprintf(&b, "^FO%d,%d^BY%d^BCN,%d,%s,N,N^FD%s^FS", it.Box.Min.X, it.Box.Min.Y, it.Module, it.BarHeight, hri, code128Data(it.Data))
			case layout.QRItem:
				data, hex := fieldData([]byte(it.Data))
				// ^BQ draws the symbol QROffset below the field origin.
				fmt.Fprintf(&b, "^FO%d,%d^BQN,2,%d", it.Box.Min.X, it.Box.Min.Y-lay.Metrics.QROffset, it.Module)
				if hex {
					b.WriteString("^FH")
				}
				fmt.Fprintf(&b, "^FD%sA,", it.EC)
				b.Write(data)
				b.WriteString("^FS")
			}
		}
		b.WriteString("^XZ\n")
	}
	return b.Bytes(), nil
}

// hexRows writes a bitmap as ^GF ASCII hex, with ZPL's shorthand for a
// row that repeats the one before (":") and for the rest of a row being
// white (","), which keeps text bitmaps small.
func hexRows(b *bytes.Buffer, bm *layout.Bitmap) {
	stride := bm.Stride()
	var prev []byte
	for y := 0; y < bm.H; y++ {
		row := bm.Bits[y*stride : (y+1)*stride]
		if prev != nil && bytes.Equal(row, prev) {
			b.WriteByte(':')
			continue
		}
		prev = row
		end := len(row)
		for end > 0 && row[end-1] == 0 {
			end--
		}
		for _, c := range row[:end] {
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&15])
		}
		if end < len(row) {
			b.WriteByte(',')
		}
	}
}

const hexDigits = "0123456789ABCDEF"

// fieldData escapes what ZPL would take as commands or what a format
// must not carry raw; hex reports whether ^FH is needed.
func fieldData(s []byte) (out []byte, hex bool) {
	out = make([]byte, 0, len(s))
	for _, c := range s {
		switch {
		case c == '^' || c == '~' || c == '_' || c < 0x20 || c == 0x7f:
			out = append(out, '_', hexDigits[c>>4], hexDigits[c&15])
			hex = true
		default:
			out = append(out, c)
		}
	}
	return out, hex
}

// code128Data writes CODE128 subset B data, with the characters ZPL
// reserves sent as invocation codes.
func code128Data(s string) string {
	var b []byte
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '>':
			b = append(b, ">0"...)
		case '^':
			b = append(b, "><"...)
		case '~':
			b = append(b, ">="...)
		default:
			b = append(b, s[i])
		}
	}
	return string(b)
}
