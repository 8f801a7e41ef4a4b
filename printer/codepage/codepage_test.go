package codepage

import (
	"bytes"
	"errors"
	"testing"
	"unicode/utf8"
)

func TestEncode(t *testing.T) {
	tests := []struct {
		page, in string
		want     []byte
	}{
		{"ascii", "A-1042 ok", []byte("A-1042 ok")},
		{"ascii", "Café “Zoë” — 5 €", []byte(`Cafe "Zoe" - 5 EUR`)},
		{"ascii", "Straße Øre Łódź", []byte("Strasse Ore Lodz")},
		{"ascii", "½ × 2…", []byte("1/2 x 2...")},
		// CP437: é = 0x82, ü = 0x81, £ = 0x9C, ß = 0xE1; no € → EUR.
		{"cp437", "é ü £ ß €", []byte{0x82, ' ', 0x81, ' ', 0x9c, ' ', 0xe1, ' ', 'E', 'U', 'R'}},
		// CP850 has Ø (0x9D) and ã (0xC6) but no €; 0xD5 is dotless i.
		{"cp850", "Ø ã €", []byte{0x9d, ' ', 0xc6, ' ', 'E', 'U', 'R'}},
		// CP858 is CP850 with € at 0xD5.
		{"cp858", "Ø ã €", []byte{0x9d, ' ', 0xc6, ' ', 0xd5}},
		// CP1252: € 0x80, “ 0x93, ” 0x94, — 0x97, é 0xE9, Œ 0x8C.
		{"cp1252", "€ “é” — Œ", []byte{0x80, ' ', 0x93, 0xe9, 0x94, ' ', 0x97, ' ', 0x8c}},
		// ISO-8859-15: € 0xA4, Š 0xA6, œ 0xBD; no curly quotes.
		{"iso-8859-15", "€ Š œ “x”", []byte{0xa4, ' ', 0xa6, ' ', 0xbd, ' ', '"', 'x', '"'}},
		{"utf-8", "Grüße € “x”", []byte("Grüße € “x”")},
		// Decomposed input: the combining accent is dropped, not garbled.
		{"cp437", "e\u0301", []byte("e")},
		// Controls never pass through.
		{"cp1252", "a\tb\x01c", []byte("a b?c")},
	}
	for _, tt := range tests {
		got, err := Encode(tt.page, tt.in)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, tt.want) {
			t.Errorf("Encode(%s, %q) = % x (%q), want % x (%q)", tt.page, tt.in, got, got, tt.want, tt.want)
		}
	}
}

func TestLatinExtendedFallsBack(t *testing.T) {
	// cp1252 has Š (0x8A) but not ő, ț or Ş.
	got, _ := Encode("cp1252", "Ő ő ț Ş Š")
	if want := []byte{'O', ' ', 'o', ' ', 't', ' ', 'S', ' ', 0x8a}; !bytes.Equal(got, want) {
		t.Fatalf("got % x, want % x", got, want)
	}
}

func TestUnknownCounted(t *testing.T) {
	p, _ := Lookup("cp858")
	got, n := p.Encode("ok 日本 😀")
	if string(got) != "ok ?? ?" || n != 3 {
		t.Fatalf("got %q, %d unknown", got, n)
	}
	if p.Transliterate("日 € é ß") != "? € é ß" {
		t.Fatalf("Transliterate = %q", p.Transliterate("日 € é ß"))
	}
}

func TestUnknownPage(t *testing.T) {
	if _, err := Encode("cp999", "x"); !errors.Is(err, ErrUnknownPage) {
		t.Fatalf("err = %v", err)
	}
}

// Every page's output decodes back through the same table to text that
// the page can print: no byte is produced that the page does not define.
func TestNoGarbageBytes(t *testing.T) {
	in := "Ça coûte 12,50 € — “Grüße” aus Łódź; naïve Œuvre ½ ™ ©\u00a0x ő ş ğ ñ ą ę ż 日本"
	for _, name := range Names() {
		p, _ := Lookup(name)
		b, _ := p.Encode(in)
		if p.IsUTF8() {
			if !utf8.Valid(b) {
				t.Errorf("%s: invalid UTF-8", name)
			}
			continue
		}
		dec := map[byte]bool{}
		for _, c := range p.enc {
			dec[c] = true
		}
		for i, c := range b {
			if c < 0x20 || c == 0x7f || (c > 0x7f && !dec[c]) {
				t.Errorf("%s: byte %d = %#x is not a character of the page", name, i, c)
			}
		}
	}
}

func FuzzEncode(f *testing.F) {
	f.Add("Café “Zoë” — 5 €")
	f.Add("\x00\xff日本😀e\u0301")
	f.Fuzz(func(t *testing.T, s string) {
		for _, name := range Names() {
			p, _ := Lookup(name)
			b, _ := p.Encode(s)
			if p.IsUTF8() {
				continue
			}
			for _, c := range b {
				if c < 0x20 || c == 0x7f {
					t.Fatalf("%s: control byte %#x from %q", name, c, s)
				}
			}
		}
	})
}
