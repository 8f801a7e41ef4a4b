package zpl

import (
	"bytes"
	"errors"
	"fmt"
	"unicode/utf8"

	"fieldkit/printer/codepage"
	"fieldkit/printer/label"
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

// Layout constants at 203 dpi; scaled by DPI/203.
const (
	textStep  = 24 // font height per text size step
	topMargin = 8
	gapAfter  = 8  // space below barcodes and QR codes
	hriHeight = 28 // human-readable line under a CODE128
	maxModule = 10 // ^BQ magnification limit
)

// Encode renders l for the printer described by p. The profile's language
// may be empty (taken as ZPL).
func Encode(l label.Label, p label.Profile) ([]byte, error) {
	if p.Language == "" {
		p.Language = label.ZPL
	}
	if p.Language != label.ZPL {
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
	e := &encoder{p: p, page: page, scale: float64(p.DPI) / 203}
	e.start()
	for i, el := range l.Elements {
		if err := e.element(el); err != nil {
			return nil, fmt.Errorf("%w: elements[%d]: %v", ErrEncode, i, err)
		}
	}
	if e.body.Len() > 0 || e.y > e.dots(topMargin) {
		e.finish()
	}
	return e.out.Bytes(), nil
}

type encoder struct {
	p     label.Profile
	page  *codepage.Page
	scale float64
	out   bytes.Buffer // finished formats
	body  bytes.Buffer // fields of the format being built
	y     int
}

func (e *encoder) dots(n int) int { return int(float64(n)*e.scale + 0.5) }

func (e *encoder) start() {
	e.body.Reset()
	e.y = e.dots(topMargin)
}

// finish wraps the fields in a format, now that its height is known.
func (e *encoder) finish() {
	length := e.p.LengthDots
	if length == 0 {
		length = e.y + e.dots(topMargin)
	}
	fmt.Fprintf(&e.out, "^XA^CI%d^PW%d^LL%d", CharSet[e.p.CodePage], e.p.WidthDots, length)
	e.out.Write(e.body.Bytes())
	e.out.WriteString("^XZ\n")
}

func (e *encoder) element(el label.Element) error {
	b := &e.body
	switch el := el.(type) {
	case label.Text:
		h := e.dots(textStep * el.TextSize())
		text, _ := e.page.Encode(el.Text)
		data, hex := fieldData(text)
		just := "LCR"[el.Align]
		// ^FB wraps; give it as many lines as the text needs, estimating
		// font 0 at 0.55 of its height per character.
		est := utf8.RuneCountInString(el.Text) * h * 55 / 100
		lines := min(max(1, (est+e.p.WidthDots-1)/e.p.WidthDots), 9)
		// field sets the text in a block from x to the right edge less
		// cut dots; the bold copy is the same text shifted by 2 dots.
		field := func(x, cut int) {
			fmt.Fprintf(b, "^FO%d,%d^A0N,%d,%d^FB%d,%d,0,%c,0", x, e.y, h, h, e.p.WidthDots-x-cut, lines, just)
			if hex {
				b.WriteString("^FH")
			}
			b.WriteString("^FD")
			b.Write(data)
			b.WriteString("^FS")
		}
		field(0, 0)
		if el.Bold {
			if el.Align == label.Right {
				field(0, e.dots(2))
			} else {
				field(e.dots(2), 0)
			}
		}
		if el.Underline {
			w := min(est, e.p.WidthDots)
			fmt.Fprintf(b, "^FO%d,%d^GB%d,%d,%d^FS", el.Align.Offset(w, e.p.WidthDots), e.y+h, w, e.dots(2), e.dots(2))
		}
		e.y += lines * (h + h/4)
	case label.Code128:
		m, err := el.BarModule(e.p.WidthDots)
		if err != nil {
			return err
		}
		h := e.dots(el.BarHeight())
		x := el.Align.Offset(el.Modules()*m, e.p.WidthDots)
		hri := "Y"
		if el.HideText {
			hri = "N"
		}
		fmt.Fprintf(b, "^FO%d,%d^BY%d^BCN,%d,%s,N,N^FD%s^FS", x, e.y, m, h, hri, code128Data(el.Data))
		e.y += h + e.dots(gapAfter)
		if !el.HideText {
			e.y += e.dots(hriHeight)
		}
	case label.QR:
		if el.ModuleSize() > maxModule {
			return fmt.Errorf("qr size %d: ZPL ^BQ takes 1-%d", el.ModuleSize(), maxModule)
		}
		if err := el.CheckFits(e.p.WidthDots); err != nil {
			return err
		}
		w, _ := el.WidthDots()
		data, hex := fieldData([]byte(el.Data))
		fmt.Fprintf(b, "^FO%d,%d^BQN,2,%d", el.Align.Offset(w, e.p.WidthDots), e.y, el.ModuleSize())
		if hex {
			b.WriteString("^FH")
		}
		fmt.Fprintf(b, "^FD%sA,", el.EC)
		b.Write(data)
		b.WriteString("^FS")
		e.y += w + e.dots(gapAfter)
	case label.Feed:
		e.y += el.Lines * e.dots(textStep+textStep/4)
	case label.Cut:
		e.finish()
		e.start()
	default:
		return fmt.Errorf("unsupported element %T", el)
	}
	return nil
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
