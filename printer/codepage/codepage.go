// Package codepage converts label text to the single-byte code page a
// printer is set to, and transliterates what the page lacks (é → e where
// there is no é, “ → ", € → EUR, ß → ss, — → -) so that a printer never
// gets bytes it would print as the wrong glyph. A character with no
// sensible spelling in the page becomes "?", visibly, and is counted.
//
// Pages: ascii, cp437, cp850, cp858 (cp850 with € at 0xD5), cp1252,
// iso-8859-15 (Latin-9, with €), and utf-8 for printers that take UTF-8
// themselves (ZPL ^CI28). Selecting the page on the printer is the
// language package's job (ESC t n, ^CI n, CODEPAGE).
package codepage

import (
	"errors"
	"fmt"
	"sort"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"
)

// ErrUnknownPage is returned for a page name this package does not know.
var ErrUnknownPage = errors.New("unknown code page")

// Page is one code page.
type Page struct {
	name string
	utf8 bool
	enc  map[rune]byte // characters above 0x7E
}

// Name returns the page's name, as used in printer profiles.
func (p *Page) Name() string { return p.name }

// IsUTF8 reports whether the page is UTF-8 (text passes through).
func (p *Page) IsUTF8() bool { return p.utf8 }

var pages = map[string]*Page{}

func init() {
	pages["ascii"] = &Page{name: "ascii", enc: map[rune]byte{}}
	pages["utf-8"] = &Page{name: "utf-8", utf8: true}
	for name, cm := range map[string]*charmap.Charmap{
		"cp437":       charmap.CodePage437,
		"cp850":       charmap.CodePage850,
		"cp858":       charmap.CodePage858,
		"cp1252":      charmap.Windows1252,
		"iso-8859-15": charmap.ISO8859_15,
	} {
		p := &Page{name: name, enc: make(map[rune]byte, 128)}
		for b := 0x80; b <= 0xff; b++ {
			// Unassigned bytes decode to U+FFFD or a C1 control: no
			// character of a label goes out as one.
			if r := cm.DecodeByte(byte(b)); r != utf8.RuneError && !unicode.IsControl(r) {
				p.enc[r] = byte(b)
			}
		}
		pages[name] = p
	}
}

// Names lists the known pages, sorted.
func Names() []string {
	var ns []string
	for n := range pages {
		ns = append(ns, n)
	}
	sort.Strings(ns)
	return ns
}

// Lookup returns the named page.
func Lookup(name string) (*Page, error) {
	p, ok := pages[name]
	if !ok {
		return nil, fmt.Errorf("%w %q: want one of %v", ErrUnknownPage, name, Names())
	}
	return p, nil
}

// Encode converts s to the named page; see Page.Encode.
func Encode(page, s string) ([]byte, error) {
	p, err := Lookup(page)
	if err != nil {
		return nil, err
	}
	b, _ := p.Encode(s)
	return b, nil
}

// Has reports whether the page can print r as itself.
func (p *Page) Has(r rune) bool {
	if r >= 0x20 && r <= 0x7e {
		return true
	}
	if p.utf8 {
		return r > 0x7e && r != utf8.RuneError && !unicode.IsControl(r)
	}
	_, ok := p.enc[r]
	return ok
}

// Encode converts s to the page's bytes. Characters the page lacks are
// transliterated; control characters and characters with no
// transliteration become '?'. It returns how many characters became '?'.
// Combining marks are dropped (the base letter prints on its own).
func (p *Page) Encode(s string) (out []byte, unknown int) {
	out = make([]byte, 0, len(s))
	for _, r := range s {
		out, unknown = p.appendRune(out, r, unknown)
	}
	return out, unknown
}

func (p *Page) appendRune(out []byte, r rune, unknown int) ([]byte, int) {
	switch {
	case r >= 0x20 && r <= 0x7e:
		return append(out, byte(r)), unknown
	case p.Has(r):
		if p.utf8 {
			return utf8.AppendRune(out, r), unknown
		}
		return append(out, p.enc[r]), unknown
	case unicode.Is(unicode.Mn, r):
		return out, unknown
	}
	if t, ok := translit[r]; ok {
		for _, tr := range t {
			out, unknown = p.appendRune(out, tr, unknown)
		}
		return out, unknown
	}
	if b, ok := baseLetter[r]; ok {
		return append(out, b), unknown
	}
	if unicode.IsSpace(r) {
		return append(out, ' '), unknown
	}
	return append(out, '?'), unknown + 1
}

// Transliterate returns s with every character the page lacks spelled
// with characters it has, as Encode does, but as a string (for previews
// and tests).
func (p *Page) Transliterate(s string) string {
	var out []rune
	for _, r := range s {
		out = p.appendTranslit(out, r)
	}
	return string(out)
}

func (p *Page) appendTranslit(out []rune, r rune) []rune {
	switch {
	case p.Has(r):
		return append(out, r)
	case unicode.Is(unicode.Mn, r):
		return out
	}
	if t, ok := translit[r]; ok {
		for _, tr := range t {
			out = p.appendTranslit(out, tr)
		}
		return out
	}
	if b, ok := baseLetter[r]; ok {
		return append(out, rune(b))
	}
	if unicode.IsSpace(r) {
		return append(out, ' ')
	}
	return append(out, '?')
}

// translit spells characters with others that more pages have. An entry
// may produce characters that are themselves transliterated again (¼ →
// "1/4"; “ → " directly), so the chain always ends in ASCII.
var translit = map[rune]string{
	// quotes and apostrophes
	'“': `"`, '”': `"`, '„': `"`, '‟': `"`, '″': `"`, '«': `"`, '»': `"`,
	'‘': "'", '’': "'", '‚': "'", '‛': "'", '′': "'", '‹': "'", '›': "'",
	'`': "'", '´': "'",
	// dashes, spaces, dots
	'‐': "-", '‑': "-", '‒': "-", '–': "-", '—': "-", '―': "-", '−': "-",
	'\u00a0': " ", '\u2007': " ", '\u202f': " ", '\u2009': " ",
	'…': "...", '•': "*", '·': ".", '‧': ".",
	// letters without a decomposition
	'ß': "ss", 'ẞ': "SS", 'æ': "ae", 'Æ': "AE", 'œ': "oe", 'Œ': "OE",
	'ø': "o", 'Ø': "O", 'đ': "d", 'Đ': "D", 'ł': "l", 'Ł': "L",
	'þ': "th", 'Þ': "Th", 'ð': "d", 'Ð': "D", 'ı': "i", 'ĸ': "k",
	'ŋ': "ng", 'Ŋ': "NG", 'ſ': "s", 'ƒ': "f",
	// money and signs
	'€': "EUR", '£': "GBP", '¥': "JPY", '¢': "c", '₹': "INR", '₽': "RUB",
	'₺': "TRY", '₩': "KRW", '₪': "ILS", '₫': "VND", '¤': "?",
	'©': "(C)", '®': "(R)", '™': "TM", '°': "o", '×': "x", '÷': "/",
	'±': "+/-", '¼': "1/4", '½': "1/2", '¾': "3/4", '²': "2", '³': "3",
	'¹': "1", 'µ': "u", '§': "S", '¶': "P", '¦': "|", '¬': "-",
	'¡': "!", '¿': "?", 'ª': "a", 'º': "o",
	'→': "->", '←': "<-", '✓': "v", '✔': "v", '№': "No",
}

// Spell returns how r is written with the characters for which has
// reports true (the page's own, or a printer font's repertoire), using
// the same transliterations as Encode; ok is false when r has no spelling
// there (a Cyrillic letter on a Latin page, an emoji anywhere). Combining
// marks spell as nothing.
func Spell(r rune, has func(rune) bool) (s string, ok bool) {
	out, ok := appendSpelling(nil, r, has)
	return string(out), ok
}

func appendSpelling(out []rune, r rune, has func(rune) bool) ([]rune, bool) {
	switch {
	case has(r):
		return append(out, r), true
	case unicode.Is(unicode.Mn, r):
		return out, true
	}
	if t, ok := translit[r]; ok && r != '¤' {
		for _, tr := range t {
			var good bool
			if out, good = appendSpelling(out, tr, has); !good {
				return out, false
			}
		}
		return out, true
	}
	if b, ok := baseLetter[r]; ok && has(rune(b)) {
		return append(out, rune(b)), true
	}
	if unicode.IsSpace(r) && has(' ') {
		return append(out, ' '), true
	}
	return out, false
}
