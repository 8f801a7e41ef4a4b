package layout

import (
	"sync"

	"github.com/makiuchi-d/gozxing/qrcode/decoder"
	"github.com/makiuchi-d/gozxing/qrcode/encoder"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/sfnt"
	"golang.org/x/image/math/fixed"

	"fieldkit/printer/label"
)

// Metrics is what the layout knows of one printer language: its resident
// text font and how the printer draws codes, at 203 dpi (ZPL sizes scale
// with the profile's dpi).
type Metrics struct {
	// CellW and CellH are the character cell of the resident font at
	// magnification 1. CellW 0 marks a proportional font (ZPL font 0),
	// measured with the Go Bold outlines scaled to bound the printers'
	// condensed font 0 (font0Percent), so a line measured to fit does fit.
	CellW, CellH int
	// Pitch is the line advance at magnification 1.
	Pitch int
	// MaxSize is the largest magnification the language takes.
	MaxSize int
	// Margin is kept above the first and below the last element of a
	// label (label languages position from the label's corner).
	Margin int
	// QROffset is how far below its field origin the printer draws a QR
	// symbol (ZPL draws ^BQ about 10 dots below ^FO).
	QROffset int
	// MaxQRModule is the language's largest QR module.
	MaxQRModule int
	// BoldExtra is how much wider bold text inks (a double strike).
	BoldExtra int
}

var metrics = map[label.Language]Metrics{
	// Font A, 12×24; the line spacing ESC @ leaves is 30 dots.
	label.ESCPOS: {CellW: 12, CellH: 24, Pitch: 30, MaxSize: 8, QROffset: 0, MaxQRModule: 16},
	// Font 0 at 24 dots per size step, lines 30 apart.
	label.ZPL: {CellW: 0, CellH: 24, Pitch: 30, MaxSize: 8, Margin: 8, QROffset: 10, MaxQRModule: 10, BoldExtra: 2},
	// Font "3", 16×24.
	label.TSPL: {CellW: 16, CellH: 24, Pitch: 30, MaxSize: 8, Margin: 8, MaxQRModule: 10, BoldExtra: 1},
}

// MetricsOf returns the metrics of a language.
func MetricsOf(l label.Language) Metrics { return metrics[l] }

// HRIHeight is the height reserved under the bars of a CODE128 symbol
// symbolW dots wide with module m for its human-readable line. ESC/POS and
// TSPL print it in a 24-dot font; ZPL printers size it with the module
// (and renderers such as zebrash with the symbol's width, at 1/20 of it,
// centred that far below the bars).
func (m Metrics) HRIHeight(symbolW, module int) int {
	switch {
	case m.Margin == 0: // ESC/POS: font A under the bars
		return m.CellH
	case m.CellW != 0:
		return 30
	}
	return max(11*module, symbolW*3/40) + 6
}

// font0Percent scales Go Bold's advances (at an em of the field height)
// to bound ZPL font 0, a bold condensed face. Go Bold itself is the bound:
// TestFont0Bound in printer/lang finds zebrash's font 0 inking at most
// 94 % of it for wide, narrow, accented and Polish text, digits and signs.
const font0Percent = 100

// Outline fonts: Go Bold measures ZPL font 0; Go Regular and Go Bold draw
// the text a printer's resident fonts lack (they cover Latin, Greek and
// Cyrillic).
var (
	fontsOnce            sync.Once
	regularFont, boldFnt *sfnt.Font
)

func fonts() (regular, bold *sfnt.Font) {
	fontsOnce.Do(func() {
		var err error
		if regularFont, err = sfnt.Parse(goregular.TTF); err != nil {
			panic("layout: Go Regular: " + err.Error())
		}
		if boldFnt, err = sfnt.Parse(gobold.TTF); err != nil {
			panic("layout: Go Bold: " + err.Error())
		}
	})
	return regularFont, boldFnt
}

// outlineAdvance is the advance of s in f at em size ppem dots, rounded
// up.
func outlineAdvance(f *sfnt.Font, s string, ppem int) int {
	var buf sfnt.Buffer
	var sum fixed.Int26_6
	prev := sfnt.GlyphIndex(0)
	for i, r := range s {
		g, err := f.GlyphIndex(&buf, r)
		if err != nil || g == 0 {
			g, _ = f.GlyphIndex(&buf, '?')
		}
		if i > 0 {
			if k, err := f.Kern(&buf, prev, g, fixed.I(ppem), font.HintingNone); err == nil && k > 0 {
				sum += k
			}
		}
		a, err := f.GlyphAdvance(&buf, g, fixed.I(ppem), font.HintingNone)
		if err == nil {
			sum += a
		}
		prev = g
	}
	return sum.Ceil()
}

// outlineCovers reports whether the Go fonts have a glyph for r.
func outlineCovers(r rune) bool {
	reg, _ := fonts()
	var buf sfnt.Buffer
	g, err := reg.GlyphIndex(&buf, r)
	return err == nil && g != 0
}

// zplFontHas is the repertoire of ZPL's resident font 0 under ^CI28:
// Latin-1, Latin Extended-A (Polish, Czech, Turkish…) and the Windows-1252
// punctuation. Cyrillic and Greek need a downloaded font, which a pop-up
// crew's printer does not have: they go out as graphics.
func zplFontHas(r rune) bool {
	switch {
	case r >= 0x20 && r <= 0x7e, r >= 0xa0 && r <= 0x17f:
		return true
	}
	switch r {
	case '€', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', '‹', '›', '‘', '’', '“', '”', '•', '–', '—', '˜', '™':
		return true
	}
	return false
}

// qrVersion is the version of the symbol a printer draws for data: with
// the input mode left automatic (as all three encoders leave it), ASCII
// data goes in the densest mode that holds it (numeric, alphanumeric or
// byte), which the QR encoder of gozxing chooses the same way; other
// data goes as bytes.
func qrVersion(q label.QR) (int, error) {
	if isASCII(q.Data) {
		level := map[label.ECLevel]decoder.ErrorCorrectionLevel{
			label.ECL: decoder.ErrorCorrectionLevel_L, label.ECM: decoder.ErrorCorrectionLevel_M,
			label.ECQ: decoder.ErrorCorrectionLevel_Q, label.ECH: decoder.ErrorCorrectionLevel_H,
		}[q.EC]
		if sym, err := encoder.Encoder_encodeWithoutHint(q.Data, level); err == nil {
			return sym.GetVersion().GetVersionNumber(), nil
		}
	}
	return q.Version()
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
