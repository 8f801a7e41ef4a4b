package fake

import (
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"
)

// charset turns the printer's bytes into text.
type charset struct {
	cm   *charmap.Charmap // nil: UTF-8
	name string
}

var (
	cs437  = charset{charmap.CodePage437, "CP437"}
	cs850  = charset{charmap.CodePage850, "CP850"}
	cs1252 = charset{charmap.Windows1252, "CP1252"}
	csUTF8 = charset{nil, "UTF-8"}
)

// escposPages maps ESC t n to the code page Epson assigns it.
var escposPages = map[byte]charset{
	0:  cs437,
	2:  cs850,
	3:  {charmap.CodePage860, "CP860"},
	4:  {charmap.CodePage863, "CP863"},
	5:  {charmap.CodePage865, "CP865"},
	16: cs1252,
	17: {charmap.CodePage866, "CP866"},
	18: {charmap.CodePage852, "CP852"},
	19: {charmap.CodePage858, "CP858"},
}

// tsplPages maps TSPL CODEPAGE names.
var tsplPages = map[string]charset{
	"437": cs437, "850": cs850, "852": {charmap.CodePage852, "CP852"},
	"860": {charmap.CodePage860, "CP860"}, "863": {charmap.CodePage863, "CP863"},
	"865": {charmap.CodePage865, "CP865"}, "866": {charmap.CodePage866, "CP866"},
	"1250": {charmap.Windows1250, "CP1250"}, "1251": {charmap.Windows1251, "CP1251"},
	"1252": cs1252, "UTF-8": csUTF8, "UTF8": csUTF8,
}

// zplPage is the code page of ^CI n: 28 is UTF-8, 27 is Windows-1252, and
// the older international sets share code page 850 for bytes above 127.
func zplPage(n int) charset {
	switch n {
	case 28:
		return csUTF8
	case 27:
		return cs1252
	}
	return cs850
}

func (c charset) decode(b []byte) string {
	if c.cm == nil {
		if utf8.Valid(b) {
			return string(b)
		}
		rs := make([]rune, 0, len(b))
		for len(b) > 0 {
			r, n := utf8.DecodeRune(b)
			rs = append(rs, r)
			b = b[n:]
		}
		return string(rs)
	}
	rs := make([]rune, len(b))
	for i, x := range b {
		rs[i] = c.cm.DecodeByte(x)
	}
	return string(rs)
}
