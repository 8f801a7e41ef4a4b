package tspl

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"

	"fieldkit/printer/codepage"
	"fieldkit/printer/label"
	"fieldkit/printer/layout"
)

// ErrEncode is wrapped by errors for labels that do not fit the profile.
var ErrEncode = errors.New("tspl")

// CodePage maps code page names to the argument of CODEPAGE.
var CodePage = map[string]string{"ascii": "437", "cp437": "437", "cp850": "850", "cp1252": "1252"}

// Encode renders l for the printer described by p. The profile's language
// may be empty (taken as TSPL).
func Encode(l label.Label, p label.Profile) ([]byte, error) {
	lay, err := layout.For(l, p, label.TSPL)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrEncode, err)
	}
	return EncodeLayout(lay)
}

// EncodeLayout renders a label placed by package layout: one image buffer
// per page, SIZE and GAP from the media (a die-cut label is always its
// stock's length), every command at the layout's coordinates in font "3"
// (16×24), text the font lacks as BITMAP.
func EncodeLayout(lay *layout.Layout) ([]byte, error) {
	p := lay.Profile
	cp, ok := CodePage[p.CodePage]
	if !ok {
		return nil, fmt.Errorf("%w: code page %q has no CODEPAGE name", ErrEncode, p.CodePage)
	}
	page, err := codepage.Lookup(p.CodePage)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrEncode, err)
	}
	mm := func(dots int) string {
		tenths := (dots*254*10/p.DPI + 5) / 10
		s := strconv.Itoa(tenths / 10)
		if tenths%10 != 0 {
			s += "." + strconv.Itoa(tenths%10)
		}
		return s
	}
	var b bytes.Buffer
	for _, pg := range lay.Pages {
		fmt.Fprintf(&b, "SIZE %s mm,%s mm\r\nGAP %s mm,0 mm\r\nCODEPAGE %s\r\nCLS\r\n",
			mm(p.MediaWidthDots()), mm(pg.Height), mm(p.GapDotsOf()), cp)
		for _, it := range pg.Items {
			switch it.Kind {
			case layout.TextItem:
				text, _ := page.Encode(it.Text)
				q := quote(text)
				x, y, s := it.Box.Min.X, it.Box.Min.Y, it.Size
				fmt.Fprintf(&b, "TEXT %d,%d,\"3\",0,%d,%d,%s\r\n", x, y, s, s, q)
				if it.Bold {
					fmt.Fprintf(&b, "TEXT %d,%d,\"3\",0,%d,%d,%s\r\n", x+lay.Metrics.BoldExtra, y, s, s, q)
				}
				if it.Underline {
					fmt.Fprintf(&b, "BAR %d,%d,%d,2\r\n", x, it.Box.Max.Y-2, it.Box.Dx())
				}
			case layout.BitmapItem:
				bm := it.Bitmap
				fmt.Fprintf(&b, "BITMAP %d,%d,%d,%d,0,", it.Box.Min.X, it.Box.Min.Y, bm.Stride(), bm.H)
				// In TSPL bitmaps a 0 bit prints.
				for _, c := range bm.Bits {
					b.WriteByte(^c)
				}
				b.WriteString("\r\n")
			case layout.Code128Item:
				hri := 0
				if it.HRI {
					hri = 2
				}
				fmt.Fprintf(&b, "BARCODE %d,%d,\"128\",%d,%d,0,%d,%d,%s\r\n", it.Box.Min.X, it.Box.Min.Y, it.BarHeight, hri, it.Module, it.Module, quote([]byte(it.Data)))
			case layout.QRItem:
				for _, c := range []byte(it.Data) {
					if c < 0x20 || c == 0x7f {
						return nil, fmt.Errorf("%w: qr data holds control character %#x, which TSPL cannot carry", ErrEncode, c)
					}
				}
				fmt.Fprintf(&b, "QRCODE %d,%d,%s,%d,A,0,%s\r\n", it.Box.Min.X, it.Box.Min.Y, it.EC, it.Module, quote([]byte(it.Data)))
			}
		}
		b.WriteString("PRINT 1\r\n")
		if pg.Cut {
			b.WriteString("CUT\r\n")
		}
	}
	return b.Bytes(), nil
}

// quote wraps s in double quotes, sending a quote inside as \["].
func quote(s []byte) string {
	out := make([]byte, 0, len(s)+2)
	out = append(out, '"')
	for _, c := range s {
		if c == '"' {
			out = append(out, `\["]`...)
			continue
		}
		out = append(out, c)
	}
	return string(append(out, '"'))
}
