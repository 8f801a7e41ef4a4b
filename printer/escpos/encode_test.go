package escpos

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"fieldkit/printer/label"
	"fieldkit/printer/label/labeltest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

var profile = label.Profile{Language: label.ESCPOS, WidthDots: label.Width58mm, CodePage: "cp858"}

func TestGolden(t *testing.T) {
	for _, s := range labeltest.Samples() {
		t.Run(s.Name, func(t *testing.T) {
			got, err := Encode(s.Label, profile)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", s.Name+".bin")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("bytes differ from %s:\n got % x\nwant % x", path, got, want)
			}
		})
	}
}

// The commands, byte by byte, for each element kind: the golden files are
// checked against these hand-written sequences, not only against
// themselves.
func TestCommands(t *testing.T) {
	head := []byte{ESC, '@', ESC, 't', 19}
	tests := []struct {
		name string
		els  []label.Element
		want []byte
	}{
		{"plain text", []label.Element{label.Text{Text: "ab"}},
			[]byte("ab\n")},
		{"styled text then plain", []label.Element{
			label.Text{Text: "A", Size: 4, Bold: true, Underline: true, Align: label.Center},
			label.Text{Text: "b"}},
			[]byte("\x1ba\x01\x1d!\x33\x1bE\x01\x1b-\x01A\n\x1ba\x00\x1d!\x00\x1bE\x00\x1b-\x00b\n")},
		{"size 8", []label.Element{label.Text{Text: "x", Size: 8, Align: label.Right}},
			[]byte("\x1ba\x02\x1d!\x77x\n")},
		{"cp858 euro and transliteration", []label.Element{label.Text{Text: "€ é “q” ő"}},
			[]byte("\xd5 \x82 \"q\" o\n")},
		{"code128", []label.Element{label.Code128{Data: "A{1", Height: 50}},
			[]byte("\x1dh\x32\x1dw\x04\x1dH\x02\x1dk\x49\x06{BA{{1")},
		{"code128 no text, same height", []label.Element{label.Code128{Data: "A"}, label.Code128{Data: "B", HideText: true}},
			// 8 dots of feed between the codes.
			[]byte("\x1dh\x40\x1dw\x04\x1dH\x02\x1dk\x49\x03{BA\x1bJ\x08\x1dH\x00\x1dk\x49\x03{BB")},
		{"qr", []label.Element{label.QR{Data: "hi", Module: 5, EC: label.ECH, Align: label.Center}},
			// Model 2 is the default and is not sent.
			[]byte("\x1ba\x01" +
				"\x1d(k\x03\x00\x31\x43\x05" +
				"\x1d(k\x03\x00\x31\x45\x33" +
				"\x1d(k\x05\x00\x31\x50\x30hi" +
				"\x1d(k\x03\x00\x31\x51\x30")},
		{"feed and cut", []label.Element{label.Text{Text: "x"}, label.Feed{Lines: 4}, label.Cut{}},
			// Feeds go by dots (ESC J), 4 lines of 30.
			[]byte("x\n\x1bJ\x78\x1dVA\x00")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Encode(label.Label{Elements: tt.els}, profile)
			if err != nil {
				t.Fatal(err)
			}
			want := append(append([]byte{}, head...), tt.want...)
			if !bytes.Equal(got, want) {
				t.Errorf("\n got % x\nwant % x", got, want)
			}
		})
	}
}

func TestCodeTables(t *testing.T) {
	for page, n := range CodeTable {
		got, err := Encode(label.Label{Elements: []label.Element{label.Text{Text: "€"}}}, label.Profile{CodePage: page})
		if err != nil {
			t.Fatal(err)
		}
		if got[4] != n {
			t.Errorf("%s: ESC t %d, want %d", page, got[4], n)
		}
		euro := map[string]string{"cp858": "\xd5", "cp1252": "\x80", "iso-8859-15": "\xa4"}[page]
		if euro == "" {
			euro = "EUR"
		}
		if text := string(got[5:]); text != euro+"\n" {
			t.Errorf("%s: € sent as %q, want %q", page, text, euro)
		}
	}
}

func TestRefuses(t *testing.T) {
	ok := label.Label{Elements: []label.Element{label.Text{Text: "x"}}}
	tests := []struct {
		name string
		l    label.Label
		p    label.Profile
		want string
	}{
		{"zpl profile", ok, label.Profile{Language: label.ZPL}, "profile is for zpl"},
		{"utf-8 page", ok, label.Profile{CodePage: "utf-8"}, "code_page"},
		{"invalid label", label.Label{}, profile, "no elements"},
		// Too wide even at one dot per module (a version 25 symbol is
		// 117 modules; the paper is 96 dots).
		{"qr too wide", label.Label{Elements: []label.Element{label.QR{Data: strings.Repeat("x", 500), Module: 10, EC: label.ECH}}}, label.Profile{WidthDots: 96}, "modules wide"},
	}
	for _, tt := range tests {
		_, err := Encode(tt.l, tt.p)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.want)
		}
		if tt.name != "invalid label" && !errors.Is(err, ErrEncode) {
			t.Errorf("%s: %v does not wrap ErrEncode", tt.name, err)
		}
	}
	// A barcode too wide for 58 mm is printed as a QR code (the layout
	// says so in a warning); an 80 mm printer takes it as a CODE128.
	wide := label.Label{Elements: []label.Element{label.Code128{Data: strings.Repeat("x", 20)}}}
	narrow, err := Encode(wide, profile)
	if err != nil || !bytes.Contains(narrow, []byte("\x1d(k")) || bytes.Contains(narrow, []byte("\x1dk\x49")) {
		t.Fatalf("58 mm: % x, %v; want a QR code and no CODE128", narrow, err)
	}
	if b, err := Encode(wide, label.Profile{WidthDots: label.Width80mm}); err != nil || !bytes.Contains(b, []byte("\x1dk\x49")) {
		t.Fatalf("80 mm: % x, %v", b, err)
	}
}
