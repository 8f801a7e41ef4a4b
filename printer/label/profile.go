package label

import (
	"fmt"
	"slices"

	"go.yaml.in/yaml/v3"

	"fieldkit/internal/confutil"
)

// Language is a printer command language.
type Language string

// The languages the encoders speak.
const (
	ESCPOS Language = "escpos"
	ZPL    Language = "zpl"
	TSPL   Language = "tspl"
)

// Languages lists them in documentation order.
var Languages = []Language{ESCPOS, ZPL, TSPL}

// Paper widths in dots at 203 dpi.
const (
	Width58mm = 384
	Width80mm = 576
)

// Profile says how to talk to one printer: which language, how wide the
// printable area is, and which code page its text goes out in. It is part
// of each printer's config section:
//
//	language: escpos        # escpos | zpl | tspl
//	width_dots: 576         # 384 for 58 mm, 576 for 80 mm paper at 203 dpi
//	dpi: 203                # 203 or 300 (default 203)
//	code_page: cp858        # see package codepage; default per language
//	length_dots: 0          # ZPL/TSPL label length; 0 = as long as the content
//	gap_dots: 24            # TSPL gap between labels (default 24 = 3 mm)
//	media: {width_mm: 58, height_mm: 40, gap_mm: 3}   # die-cut stock
//	media: continuous       # receipt paper or continuous labels (the default)
//
// On die-cut stock every label is exactly height_mm long: content that
// does not fit goes on the next label, never stretches one.
type Profile struct {
	Language  Language `yaml:"language" json:"language"`
	WidthDots int      `yaml:"width_dots" json:"width_dots"`
	DPI       int      `yaml:"dpi" json:"dpi"`
	CodePage  string   `yaml:"code_page" json:"code_page"`
	// LengthDots is the label length on die-cut stock (ZPL ^LL, TSPL
	// SIZE); 0 sizes the label to its content, for continuous media.
	LengthDots int `yaml:"length_dots" json:"length_dots"`
	// GapDots is the gap between labels (TSPL GAP); 0 means 24 dots.
	GapDots int `yaml:"gap_dots" json:"gap_dots"`
	// Media is the stock loaded; it overrides LengthDots and GapDots.
	Media Media `yaml:"media" json:"media,omitzero"`
}

// Media is the label stock in a printer: die-cut labels of a fixed size
// with a gap between them, or continuous paper (the zero value).
type Media struct {
	WidthMM    float64 `yaml:"width_mm" json:"width_mm,omitempty"`
	HeightMM   float64 `yaml:"height_mm" json:"height_mm,omitempty"`
	GapMM      float64 `yaml:"gap_mm" json:"gap_mm,omitempty"`
	Continuous bool    `yaml:"-" json:"continuous,omitempty"`
}

// UnmarshalYAML takes the mapping form or the word "continuous".
func (m *Media) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		if n.Value != "continuous" {
			return fmt.Errorf("media %q: want continuous or {width_mm, height_mm, gap_mm}", n.Value)
		}
		*m = Media{Continuous: true}
		return nil
	}
	type plain Media
	var p plain
	if err := n.Decode(&p); err != nil {
		return err
	}
	*m = Media(p)
	return nil
}

// DieCut reports whether the stock is labels of a fixed length.
func (p Profile) DieCut() bool { return p.PageDots() > 0 }

// PageDots is the length of one label on die-cut stock, 0 on continuous
// paper.
func (p Profile) PageDots() int {
	p = p.WithDefaults()
	if p.Media.Continuous {
		return 0
	}
	if p.Media.HeightMM > 0 {
		return p.mmDots(p.Media.HeightMM)
	}
	return p.LengthDots
}

// GapDotsOf is the gap between labels, from the media when it says.
func (p Profile) GapDotsOf() int {
	p = p.WithDefaults()
	if p.Media.HeightMM > 0 || p.Media.Continuous {
		return p.mmDots(p.Media.GapMM)
	}
	return p.GapDots
}

// MediaWidthDots is the stock's width (TSPL SIZE), or the print width
// when the media does not say.
func (p Profile) MediaWidthDots() int {
	p = p.WithDefaults()
	if p.Media.WidthMM > 0 {
		return p.mmDots(p.Media.WidthMM)
	}
	return p.WidthDots
}

func (p Profile) mmDots(mm float64) int { return int(mm*float64(p.DPI)/25.4 + 0.5) }

// Defaults: 58 mm paper at 203 dpi, and the code page each language's
// printers most commonly ship with that has the euro sign.
var defaultCodePage = map[Language]string{
	ESCPOS: "cp858",
	ZPL:    "utf-8",
	TSPL:   "cp1252",
}

// WithDefaults returns p with zero fields filled in.
func (p Profile) WithDefaults() Profile {
	if p.WidthDots == 0 {
		p.WidthDots = Width58mm
	}
	if p.DPI == 0 {
		p.DPI = 203
	}
	if p.CodePage == "" {
		p.CodePage = defaultCodePage[p.Language]
	}
	if p.GapDots == 0 {
		p.GapDots = 24
	}
	return p
}

// CodePages lists, per language, the code page names a profile may choose.
// The names are those of package codepage; "utf-8" means the printer
// takes UTF-8 itself (ZPL ^CI28). TSPL's built-in bitmap fonts are
// single-byte, so TSPL printers get a code page.
var CodePages = map[Language][]string{
	ESCPOS: {"ascii", "cp437", "cp850", "cp858", "cp1252", "iso-8859-15"},
	ZPL:    {"utf-8", "ascii", "cp850", "cp1252"},
	TSPL:   {"ascii", "cp437", "cp850", "cp1252"},
}

// Validate reports problems with p (after defaults) into probs, by key.
func (p Profile) Validate(probs *confutil.Problems) {
	if !slices.Contains(Languages, p.Language) {
		probs.Addf("language", "%q: want escpos, zpl or tspl", p.Language)
		return
	}
	d := p.WithDefaults()
	if d.DPI != 203 && d.DPI != 300 && d.DPI != 600 {
		probs.Addf("dpi", "%d: want 203, 300 or 600", p.DPI)
	}
	if d.WidthDots < 96 || d.WidthDots > 2400 {
		probs.Addf("width_dots", "%d: want 96-2400 dots (384 for 58 mm, 576 for 80 mm paper at 203 dpi)", p.WidthDots)
	}
	if !slices.Contains(CodePages[p.Language], d.CodePage) {
		probs.Addf("code_page", "%q: %s printers take one of %v", p.CodePage, p.Language, CodePages[p.Language])
	}
	if d.LengthDots < 0 || d.LengthDots > 32000 {
		probs.Addf("length_dots", "%d: want 0 (fit the content) or up to 32000 dots", p.LengthDots)
	}
	if d.GapDots < 0 || d.GapDots > 400 {
		probs.Addf("gap_dots", "%d: want 0-400 dots", p.GapDots)
	}
	m := d.Media
	finite := func(v float64) bool { return v >= 0 && v <= 1e6 } // NaN is neither
	switch {
	case !finite(m.HeightMM) || !finite(m.GapMM) || !finite(m.WidthMM):
		probs.Addf("media", "%+v: sizes are millimetres, 0 or more", m)
	case m.Continuous && (m.HeightMM != 0 || m.GapMM != 0):
		probs.Addf("media", "continuous media has no label height or gap")
	case m.HeightMM < 0 || m.HeightMM > 2000:
		probs.Addf("media.height_mm", "%g: want 5-2000 mm", m.HeightMM)
	case m.HeightMM != 0 && m.HeightMM < 5:
		probs.Addf("media.height_mm", "%g: want 5-2000 mm", m.HeightMM)
	case m.GapMM < 0 || m.GapMM > 50:
		probs.Addf("media.gap_mm", "%g: want 0-50 mm", m.GapMM)
	case m.WidthMM < 0 || m.WidthMM > 300:
		probs.Addf("media.width_mm", "%g: want 0-300 mm", m.WidthMM)
	case m.WidthMM > 0 && d.mmDots(m.WidthMM) < d.WidthDots:
		probs.Addf("media.width_mm", "%g mm is narrower than width_dots %d", m.WidthMM, d.WidthDots)
	}
}

// Check validates p outside a config file, as one error.
func (p Profile) Check() error {
	probs := confutil.NewProblems()
	p.Validate(probs)
	if probs.Empty() {
		return nil
	}
	pr := probs.List()[0]
	return fmt.Errorf("printer profile: %s: %s", pr.Path, pr.Msg)
}
