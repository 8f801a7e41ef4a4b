package escpos

import (
	"errors"
	"fmt"

	"fieldkit/printer/codepage"
	"fieldkit/printer/label"
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
	if p.Language == "" {
		p.Language = label.ESCPOS
	}
	if p.Language != label.ESCPOS {
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
	n, ok := CodeTable[p.CodePage]
	if !ok {
		return nil, fmt.Errorf("%w: code page %q has no ESC t number", ErrEncode, p.CodePage)
	}
	e := encoder{page: page, size: 1}
	e.b = append(e.b, ESC, '@', ESC, 't', n)
	for i, el := range l.Elements {
		if err := e.element(el, p.WidthDots); err != nil {
			return nil, fmt.Errorf("%w: elements[%d]: %v", ErrEncode, i, err)
		}
	}
	return e.b, nil
}

// encoder tracks the styles in force on the printer, as left by ESC @ and
// the commands sent since, so that each is sent only when it changes.
type encoder struct {
	b         []byte
	page      *codepage.Page
	align     label.Align
	size      int
	bold, ul  bool
	barHeight int
	barModule int
	hri       byte
}

func (e *encoder) element(el label.Element, width int) error {
	switch el := el.(type) {
	case label.Text:
		e.setAlign(el.Align)
		if s := el.TextSize(); s != e.size {
			e.b = append(e.b, GS, '!', byte((s-1)<<4|(s-1)))
			e.size = s
		}
		if el.Bold != e.bold {
			e.b = append(e.b, ESC, 'E', onOff(el.Bold))
			e.bold = el.Bold
		}
		if el.Underline != e.ul {
			e.b = append(e.b, ESC, '-', onOff(el.Underline))
			e.ul = el.Underline
		}
		text, _ := e.page.Encode(el.Text)
		e.b = append(e.b, text...)
		e.b = append(e.b, LF)
	case label.Code128:
		m, err := el.BarModule(width)
		if err != nil {
			return err
		}
		e.setAlign(el.Align)
		if h := el.BarHeight(); h != e.barHeight {
			e.b = append(e.b, GS, 'h', byte(h))
			e.barHeight = h
		}
		if m != e.barModule {
			e.b = append(e.b, GS, 'w', byte(m))
			e.barModule = m
		}
		hri := byte(2)
		if el.HideText {
			hri = 0
		}
		if hri != e.hri {
			e.b = append(e.b, GS, 'H', hri)
			e.hri = hri
		}
		data := code128B(el.Data)
		e.b = append(e.b, GS, 'k', 73, byte(len(data)))
		e.b = append(e.b, data...)
	case label.QR:
		if err := el.CheckFits(width); err != nil {
			return err
		}
		e.setAlign(el.Align)
		e.b = append(e.b, qrFn(65, 50, 0)...)                             // model 2
		e.b = append(e.b, qrFn(67, byte(el.ModuleSize()))...)             // module size
		e.b = append(e.b, qrFn(69, ecByte(el.EC))...)                     // EC level
		e.b = append(e.b, qrFn(80, append([]byte{48}, el.Data...)...)...) // store
		e.b = append(e.b, qrFn(81, 48)...)                                // print
	case label.Feed:
		e.b = append(e.b, ESC, 'd', byte(el.Lines))
	case label.Cut:
		e.b = append(e.b, GS, 'V', 65, 0)
	default:
		return fmt.Errorf("unsupported element %T", el)
	}
	return nil
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
