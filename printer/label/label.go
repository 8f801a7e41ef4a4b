package label

import (
	"errors"
	"fmt"
	"regexp"
	"unicode"
	"unicode/utf8"
)

// Limits keep a label small enough to go to a printer as one job of native
// commands (well under a few kilobytes) and inside what every supported
// printer language accepts.
const (
	MaxElements   = 64
	MaxTextRunes  = 128
	MaxCode128    = 64
	MaxQR         = 512
	MaxFeed       = 20
	MaxIDLen      = 64
	MaxJSONBytes  = 64 << 10
	MinBarHeight  = 8
	MaxBarHeight  = 255
	MaxQRModule   = 16
	MaxTextSize   = 8
	DefaultHeight = 64
	DefaultModule = 4
)

// ErrInvalid is wrapped by every error Decode and Validate return, so that
// callers can answer "bad request" without matching on messages.
var ErrInvalid = errors.New("invalid label")

// Label is what gets printed: elements in order, top to bottom.
type Label struct {
	// ID optionally names the label (a job id, an order number).
	ID       string
	Elements []Element
}

// Element is one of Text, Code128, QR, Feed, Cut.
type Element interface {
	kind() string
}

// Align is horizontal placement across the paper width.
type Align uint8

// Alignments; the zero value is Left.
const (
	Left Align = iota
	Center
	Right
)

func (a Align) String() string {
	switch a {
	case Left:
		return "left"
	case Center:
		return "center"
	case Right:
		return "right"
	}
	return fmt.Sprintf("Align(%d)", uint8(a))
}

// ParseAlign accepts "left", "center" or "right".
func ParseAlign(s string) (Align, error) {
	switch s {
	case "left":
		return Left, nil
	case "center":
		return Center, nil
	case "right":
		return Right, nil
	}
	return 0, fmt.Errorf("align %q: want left, center or right", s)
}

// ECLevel is the QR error-correction level.
type ECLevel uint8

// Levels, from least to most redundancy; the zero value is M, the usual
// choice for labels that may get scuffed.
const (
	ECM ECLevel = iota
	ECL
	ECQ
	ECH
)

func (e ECLevel) String() string {
	switch e {
	case ECL:
		return "L"
	case ECM:
		return "M"
	case ECQ:
		return "Q"
	case ECH:
		return "H"
	}
	return fmt.Sprintf("ECLevel(%d)", uint8(e))
}

// ParseEC accepts "L", "M", "Q" or "H".
func ParseEC(s string) (ECLevel, error) {
	switch s {
	case "L":
		return ECL, nil
	case "M":
		return ECM, nil
	case "Q":
		return ECQ, nil
	case "H":
		return ECH, nil
	}
	return 0, fmt.Errorf("ec %q: want L, M, Q or H", s)
}

// Text is one line of text. Size is the magnification 1-8 (0 means 1).
// Right, when set, is printed flush with the right edge of the same line
// (a price beside an item): the printer justifies it, nobody pads with
// spaces.
type Text struct {
	Text      string
	Right     string
	Size      int
	Bold      bool
	Underline bool
	Align     Align
}

// Code128 is a CODE128 barcode. Data that CODE128 cannot carry (anything
// but printable ASCII) or that is too long for the paper is printed as a
// QR code instead, and the job carries a warning saying so: a code is
// never dropped.
type Code128 struct {
	Data string
	// Height of the bars in dots; 0 means DefaultHeight.
	Height int
	// HideText suppresses the human-readable line under the bars (it is
	// printed by default).
	HideText bool
	Align    Align
}

// QR is a model 2 QR code.
type QR struct {
	Data string
	// Module is the size of one QR module in dots; 0 means DefaultModule.
	Module int
	EC     ECLevel
	Align  Align
}

// Feed advances the paper by Lines blank lines.
type Feed struct{ Lines int }

// Cut cuts the paper (receipt printers) or ends the label (label stock).
type Cut struct{}

func (Text) kind() string    { return "text" }
func (Code128) kind() string { return "code128" }
func (QR) kind() string      { return "qr" }
func (Feed) kind() string    { return "feed" }
func (Cut) kind() string     { return "cut" }

// TextSize returns the magnification with the default applied.
func (t Text) TextSize() int {
	if t.Size == 0 {
		return 1
	}
	return t.Size
}

// BarHeight returns the bar height with the default applied.
func (c Code128) BarHeight() int {
	if c.Height == 0 {
		return DefaultHeight
	}
	return c.Height
}

// ModuleSize returns the module size with the default applied.
func (q QR) ModuleSize() int {
	if q.Module == 0 {
		return DefaultModule
	}
	return q.Module
}

var idRE = regexp.MustCompile(`^[A-Za-z0-9._:-]+$`)

// Validate checks the label against the model's rules; the error names
// the first bad element and wraps ErrInvalid.
func (l Label) Validate() error {
	if l.ID != "" && (len(l.ID) > MaxIDLen || !idRE.MatchString(l.ID)) {
		return invalid("id %q: want 1-%d characters of A-Z a-z 0-9 . _ : -", l.ID, MaxIDLen)
	}
	if len(l.Elements) == 0 {
		return invalid("no elements: a label needs at least one text, code128 or qr")
	}
	if len(l.Elements) > MaxElements {
		return invalid("%d elements: at most %d", len(l.Elements), MaxElements)
	}
	printable := false
	for i, e := range l.Elements {
		if e == nil {
			return invalid("elements[%d]: empty element", i)
		}
		if err := validateElement(e); err != nil {
			return invalid("elements[%d] (%s): %v", i, e.kind(), err)
		}
		switch e.(type) {
		case Text, Code128, QR:
			printable = true
		}
	}
	if !printable {
		return invalid("nothing to print: a label needs at least one text, code128 or qr")
	}
	return nil
}

func validateElement(e Element) error {
	switch e := e.(type) {
	case Text:
		if err := checkText(e.Text); err != nil {
			return err
		}
		if e.Right != "" {
			if err := checkText(e.Right); err != nil {
				return fmt.Errorf("right: %v", err)
			}
		}
		if e.Size < 0 || e.Size > MaxTextSize {
			return fmt.Errorf("size %d: want 1-%d", e.Size, MaxTextSize)
		}
		return checkAlign(e.Align)
	case Code128:
		if e.Data == "" || utf8.RuneCountInString(e.Data) > MaxCode128 {
			return fmt.Errorf("data of %d characters: want 1-%d", utf8.RuneCountInString(e.Data), MaxCode128)
		}
		if err := checkText(e.Data); err != nil {
			return fmt.Errorf("data: %v", err)
		}
		if e.Height != 0 && (e.Height < MinBarHeight || e.Height > MaxBarHeight) {
			return fmt.Errorf("height %d: want %d-%d dots", e.Height, MinBarHeight, MaxBarHeight)
		}
		return checkAlign(e.Align)
	case QR:
		if e.Data == "" || len(e.Data) > MaxQR {
			return fmt.Errorf("data of %d bytes: want 1-%d", len(e.Data), MaxQR)
		}
		if !utf8.ValidString(e.Data) {
			return fmt.Errorf("data is not valid UTF-8")
		}
		if e.Module < 0 || e.Module > MaxQRModule {
			return fmt.Errorf("size %d: want 1-%d dots per module", e.Module, MaxQRModule)
		}
		if e.EC > ECH {
			return fmt.Errorf("ec %v: want L, M, Q or H", e.EC)
		}
		return checkAlign(e.Align)
	case Feed:
		if e.Lines < 1 || e.Lines > MaxFeed {
			return fmt.Errorf("feed %d: want 1-%d lines", e.Lines, MaxFeed)
		}
	case Cut:
	default:
		return fmt.Errorf("unknown element type %T", e)
	}
	return nil
}

func checkText(s string) error {
	if s == "" {
		return errors.New("empty text: use feed for a blank line")
	}
	if !utf8.ValidString(s) {
		return errors.New("text is not valid UTF-8")
	}
	n := 0
	for _, r := range s {
		n++
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return fmt.Errorf("text %q: control character %U; one element is one line, use another text element for the next line", s, r)
		}
	}
	if n > MaxTextRunes {
		return fmt.Errorf("text of %d characters: at most %d per line", n, MaxTextRunes)
	}
	return nil
}

// IsCode128 reports whether s can be a CODE128 symbol in code set B:
// printable ASCII only.
func IsCode128(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e {
			return false
		}
	}
	return s != ""
}

func checkAlign(a Align) error {
	if a > Right {
		return fmt.Errorf("align %v: want left, center or right", a)
	}
	return nil
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}
