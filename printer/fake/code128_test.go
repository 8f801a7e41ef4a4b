package fake

import (
	"image"
	"testing"
)

func TestCode128Table(t *testing.T) {
	for v, w := range code128Widths {
		sum, want := 0, 11
		if v == c128Stop {
			want = 13
		}
		for _, c := range w {
			sum += int(c - '0')
		}
		if sum != want {
			t.Errorf("value %d: widths %s sum to %d, want %d", v, w, sum, want)
		}
	}
}

// TestCode128Sets draws symbols that use each code set and switches
// between them, and reads them back.
func TestCode128Sets(t *testing.T) {
	tests := []struct {
		name, want string
		codes      func() ([]int, string, error)
	}{
		{"escpos set C", "123456", func() ([]int, string, error) { return code128ESCPOS([]byte{'{', 'C', 12, 34, 56}) }},
		{"escpos B then C", "AB1234", func() ([]int, string, error) { return code128ESCPOS([]byte{'{', 'B', 'A', 'B', '{', 'C', 12, 34}) }},
		{"escpos literal brace", "a{b", func() ([]int, string, error) { return code128ESCPOS([]byte("{Ba{{b")) }},
		{"zpl start C, switch B", "123456AB", func() ([]int, string, error) { return code128ZPL([]byte(">;123456>6AB")) }},
		{"zpl auto", "ORD-0042-99", func() ([]int, string, error) { return code128ZPL([]byte("ORD-0042-99")) }},
		{"auto digits", "20240517", func() ([]int, string, error) { c, err := code128Auto([]byte("20240517")); return c, "20240517", err }},
		{"auto control", "A\tB", func() ([]int, string, error) { c, err := code128Auto([]byte("A\tB")); return c, "A\tB", err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			codes, text, err := tt.codes()
			if err != nil {
				t.Fatal(err)
			}
			if text != tt.want {
				t.Errorf("text %q, want %q", text, tt.want)
			}
			bc := Barcode{X: 20, Y: 10, Codes: codes, Module: 2, Height: 40}
			img := renderLabel(&Label{Ops: []Op{bc}}, bc.Width()+40)
			if got := decodeCode128(t, crop(img, image.Rect(0, 0, bc.Width()+40, 60), 10)); got != tt.want {
				t.Fatalf("reads %q, want %q", got, tt.want)
			}
		})
	}
	for _, bad := range [][]byte{nil, []byte("{"), []byte("{X1"), []byte("{C\xff"), []byte("ab")} {
		if _, _, err := code128ESCPOS(bad); err == nil {
			t.Errorf("code128ESCPOS(%q) accepted", bad)
		}
	}
}

// TestCodePages decodes non-ASCII text in each language's code page.
func TestCodePages(t *testing.T) {
	tests := []struct {
		lang string
		data []byte
		want string
	}{
		{ESCPOS, []byte("\x1bt\x02Caf\x82\n\x1bV\x00"), "Café"},           // CP850
		{ESCPOS, []byte("\x1bt\x10\x93Hi\x94 \x80\n\x1dV\x00"), "“Hi” €"}, // CP1252
		{ESCPOS, []byte("\x1bt\x13\xd5\n\x1dV\x00"), "€"},                 // CP858
		{ZPL, []byte("^XA^CI28^FO0,0^FDżółw^FS^XZ"), "żółw"},
		{ZPL, []byte("^XA^CI28^FO0,0^FH^FD_C3_A9t_C3_A9^FS^XZ"), "été"},
		{ZPL, []byte("^XA^FO0,0^FDna\x87^FS^XZ"), "naç"}, // CP850 default
		{TSPL, []byte("CODEPAGE 1252\nTEXT 0,0,\"2\",0,1,1,\"\x80 5\"\nPRINT 1\n"), "€ 5"},
		{TSPL, []byte("CODEPAGE UTF-8\nTEXT 0,0,\"2\",0,1,1,\"Ünïcødé\"\nPRINT 1\n"), "Ünïcødé"},
	}
	for _, tt := range tests {
		labels, err := Decode(tt.lang, tt.data, 384)
		if err != nil {
			t.Fatal(err)
		}
		if len(labels) == 0 || len(labels[0].Texts()) == 0 || labels[0].Texts()[0] != tt.want {
			t.Errorf("%s %q: got %v, want %q", tt.lang, tt.data, labels, tt.want)
		}
	}
}
