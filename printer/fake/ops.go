package fake

import "errors"

// Language names, as printer profiles spell them.
const (
	ESCPOS = "escpos"
	ZPL    = "zpl"
	TSPL   = "tspl"
)

// ErrLang is returned for a language the fake does not speak.
var ErrLang = errors.New("fake printer: unknown language (want escpos, zpl or tspl)")

// Op is one drawing operation on a label, positioned in dots from the
// label's top-left corner.
type Op interface {
	// extent is the bottom-right corner the op may reach, used to size
	// the canvas.
	extent() (x, y int)
}

// Text is a run of characters in one style. CharW and CharH are the
// character cell in dots (the advance and the line height).
type Text struct {
	X, Y         int
	Text         string
	CharW, CharH int
	Bold         bool
	Underline    bool
}

func (t Text) extent() (int, int) {
	return t.X + t.CharW*len([]rune(t.Text)), t.Y + t.CharH
}

// Barcode is a CODE128 symbol. Codes holds the symbol values from the start
// code on, without checksum and stop, exactly as the printer would encode
// the command's data; Data is the human-readable content.
type Barcode struct {
	X, Y   int
	Data   string
	Codes  []int
	Module int // narrowest bar, dots
	Height int // dots
}

func (b Barcode) extent() (int, int) {
	return b.X + b.Width(), b.Y + b.Height
}

// Width is the symbol's width in dots, without quiet zones.
func (b Barcode) Width() int {
	return b.Module * (11*(len(b.Codes)+1) + 13)
}

// QR is a QR code of Data; Module is the module size in dots and ECC one of
// 'L', 'M', 'Q', 'H'. Size is the number of modules per side.
type QR struct {
	X, Y   int
	Data   string
	Module int
	ECC    byte
	Size   int
}

func (q QR) extent() (int, int) {
	return q.X + q.Size*q.Module, q.Y + q.Size*q.Module
}

// Box is a rectangle outline of thickness Thick; a box with Thick ≥ half
// its smaller side is a filled bar.
type Box struct {
	X, Y, W, H int
	Thick      int
}

func (b Box) extent() (int, int) { return b.X + b.W, b.Y + b.H }

// Raster is a bitmap, W×H dots, rows of (W+7)/8 bytes, most significant bit
// leftmost, 1 = black.
type Raster struct {
	X, Y, W, H int
	Bits       []byte
}

func (r Raster) extent() (int, int) { return r.X + r.W, r.Y + r.H }

// Label is what the printer made of the bytes between two label ends (a
// cut in ESC/POS, ^XZ in ZPL, PRINT in TSPL).
type Label struct {
	Lang string
	Ops  []Op
	// Unknown lists, in order, the commands the fake does not model or
	// could not use (bad parameters, too much data). They are skipped,
	// as a tolerant printer would.
	Unknown []string
	// Width and Height are the size the label declared (ZPL ^PW/^LL,
	// TSPL SIZE), 0 when it did not.
	Width, Height int
	// Copies is the number of copies asked for (TSPL PRINT m, ZPL ^PQ).
	Copies int
	// Bytes counts the bytes on the wire that made this label.
	Bytes int
	// Complete is false for a trailing label that never saw its end.
	Complete bool
	// Cut is true when the label ended with a cut command.
	Cut bool
	// PNG is the rendered label; the Printer fills it in when it prints.
	PNG []byte
}

// Texts returns the text of the label's Text ops, in order.
func (l *Label) Texts() []string {
	var out []string
	for _, op := range l.Ops {
		if t, ok := op.(Text); ok {
			out = append(out, t.Text)
		}
	}
	return out
}

func (l *Label) unknown(s string) {
	// Bounded, so that a stream of junk cannot grow a label without end.
	if len(l.Unknown) < 256 {
		l.Unknown = append(l.Unknown, s)
	}
}

// EventKind says what a Decoder found.
type EventKind int

const (
	// EventQuery is a status query the printer must answer now.
	EventQuery EventKind = iota + 1
	// EventLabel is a finished label.
	EventLabel
)

// Event is a status query or a finished label, in stream order.
type Event struct {
	Kind EventKind
	// Query names the status query: "DLE EOT 1".."DLE EOT 4", "~HS",
	// "ESC !?".
	Query string
	// N is n of ESC/POS DLE EOT n.
	N     int
	Label *Label
}

// Decoder turns a byte stream into events. Feed may be called with any
// split of the stream; the result is the same as feeding it whole. Malformed
// input never panics: what cannot be used is recorded in Label.Unknown.
type Decoder interface {
	Feed(p []byte) []Event
	// Flush ends the stream and returns the unfinished label, or nil
	// when nothing was drawn since the last label end.
	Flush() *Label
	// Reset drops the unfinished label and all pending bytes, as a
	// printer that lost power would; settings such as code page stay.
	Reset()
}

// NewDecoder returns a decoder for lang laying out labels on paper
// widthDots wide.
func NewDecoder(lang string, widthDots int) (Decoder, error) {
	if widthDots <= 0 {
		widthDots = 384
	}
	switch lang {
	case ESCPOS:
		return newESCPOS(widthDots), nil
	case ZPL:
		return newZPL(widthDots), nil
	case TSPL:
		return newTSPL(widthDots), nil
	}
	return nil, ErrLang
}

// Limits that keep hostile input from exhausting memory.
const (
	maxPending = 1 << 20 // bytes of one command kept for decoding
	maxOps     = 4096    // ops per label
	maxDots    = 8000    // largest coordinate the renderer draws to (1 m)
	maxFont    = 1000    // tallest character cell, dots (12 cm)
)

func addOp(l *Label, op Op) {
	if len(l.Ops) >= maxOps {
		l.unknown("too many ops")
		return
	}
	l.Ops = append(l.Ops, op)
}
