package tspl

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"

	"fieldkit/printer/codepage"
	"fieldkit/printer/label"
)

// ErrEncode is wrapped by errors for labels that do not fit the profile.
var ErrEncode = errors.New("tspl")

// CodePage maps code page names to the argument of CODEPAGE.
var CodePage = map[string]string{"ascii": "437", "cp437": "437", "cp850": "850", "cp1252": "1252"}

// Font 3 cell at 203 dpi, and spacing.
const (
	fontW     = 16
	fontH     = 24
	topMargin = 8
	lineGap   = 6
	gapAfter  = 8
	hriHeight = 28
	maxCell   = 10 // QRCODE cell width limit
	maxMul    = 8  // TEXT multiplication (printers take up to 10)
)

// Encode renders l for the printer described by p. The profile's language
// may be empty (taken as TSPL).
func Encode(l label.Label, p label.Profile) ([]byte, error) {
	if p.Language == "" {
		p.Language = label.TSPL
	}
	if p.Language != label.TSPL {
		return nil, fmt.Errorf("%w: profile is for %s", ErrEncode, p.Language)
	}
	if err := p.Check(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrEncode, err)
	}
	p = p.WithDefaults()
	if err := l.Validate(); err != nil {
		return nil, err
	}
	page, err := codepage.Lookup(p.CodePage)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrEncode, err)
	}
	e := &encoder{p: p, page: page}
	e.start()
	for i, el := range l.Elements {
		if err := e.element(el); err != nil {
			return nil, fmt.Errorf("%w: elements[%d]: %v", ErrEncode, i, err)
		}
	}
	if e.body.Len() > 0 || e.y > topMargin {
		e.finish(false)
	}
	return e.out.Bytes(), nil
}

type encoder struct {
	p    label.Profile
	page *codepage.Page
	out  bytes.Buffer
	body bytes.Buffer
	y    int
}

func (e *encoder) start() {
	e.body.Reset()
	e.y = topMargin
}

// mm writes dots as millimetres, to 0.1 mm.
func (e *encoder) mm(dots int) string {
	tenths := (dots*254*10/e.p.DPI + 5) / 10
	s := strconv.Itoa(tenths / 10)
	if tenths%10 != 0 {
		s += "." + strconv.Itoa(tenths%10)
	}
	return s
}

func (e *encoder) finish(cut bool) {
	length := e.p.LengthDots
	if length == 0 {
		length = e.y + topMargin
	}
	fmt.Fprintf(&e.out, "SIZE %s mm,%s mm\r\nGAP %s mm,0 mm\r\nCODEPAGE %s\r\nCLS\r\n",
		e.mm(e.p.WidthDots), e.mm(length), e.mm(e.p.GapDots), CodePage[e.p.CodePage])
	e.out.Write(e.body.Bytes())
	e.out.WriteString("PRINT 1\r\n")
	if cut {
		e.out.WriteString("CUT\r\n")
	}
}

func (e *encoder) element(el label.Element) error {
	b := &e.body
	switch el := el.(type) {
	case label.Text:
		s := min(el.TextSize(), maxMul)
		text, _ := e.page.Encode(el.Text)
		h := fontH * s
		// Bitmap text does not wrap on the printer: wrap here, as an
		// ESC/POS printer would, rather than lose the end of the line.
		for _, line := range wrap(text, max(1, e.p.WidthDots/(fontW*s))) {
			w := len(line) * fontW * s // one byte per character
			x := el.Align.Offset(w, e.p.WidthDots)
			q := quote(line)
			fmt.Fprintf(b, "TEXT %d,%d,\"3\",0,%d,%d,%s\r\n", x, e.y, s, s, q)
			if el.Bold {
				fmt.Fprintf(b, "TEXT %d,%d,\"3\",0,%d,%d,%s\r\n", x+1, e.y, s, s, q)
			}
			if el.Underline {
				fmt.Fprintf(b, "BAR %d,%d,%d,2\r\n", x, e.y+h, min(w, e.p.WidthDots-x))
			}
			e.y += h + lineGap*s
		}
	case label.Code128:
		m, err := el.BarModule(e.p.WidthDots)
		if err != nil {
			return err
		}
		h := el.BarHeight()
		x := el.Align.Offset(el.Modules()*m, e.p.WidthDots)
		hri := 2
		if el.HideText {
			hri = 0
		}
		fmt.Fprintf(b, "BARCODE %d,%d,\"128\",%d,%d,0,%d,%d,%s\r\n", x, e.y, h, hri, m, m, quote([]byte(el.Data)))
		e.y += h + gapAfter
		if !el.HideText {
			e.y += hriHeight
		}
	case label.QR:
		if el.ModuleSize() > maxCell {
			return fmt.Errorf("qr size %d: TSPL QRCODE takes 1-%d", el.ModuleSize(), maxCell)
		}
		for _, c := range []byte(el.Data) {
			if c < 0x20 || c == 0x7f {
				return fmt.Errorf("qr data holds control character %#x, which TSPL cannot carry", c)
			}
		}
		if err := el.CheckFits(e.p.WidthDots); err != nil {
			return err
		}
		w, _ := el.WidthDots()
		fmt.Fprintf(b, "QRCODE %d,%d,%s,%d,A,0,%s\r\n", el.Align.Offset(w, e.p.WidthDots), e.y, el.EC, el.ModuleSize(), quote([]byte(el.Data)))
		e.y += w + gapAfter
	case label.Feed:
		e.y += el.Lines * (fontH + lineGap)
	case label.Cut:
		e.finish(true)
		e.start()
	default:
		return fmt.Errorf("unsupported element %T", el)
	}
	return nil
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

// wrap splits text into lines of at most n characters, at the last space
// when there is one.
func wrap(text []byte, n int) [][]byte {
	var lines [][]byte
	for len(text) > n {
		cut := bytes.LastIndexByte(text[:n+1], ' ')
		if cut <= 0 {
			lines = append(lines, text[:n])
			text = text[n:]
			continue
		}
		lines = append(lines, bytes.TrimRight(text[:cut], " "))
		text = text[cut+1:]
	}
	return append(lines, text)
}
