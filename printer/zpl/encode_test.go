package zpl

import (
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

var profile = label.Profile{Language: label.ZPL, WidthDots: label.Width58mm}

func TestGolden(t *testing.T) {
	for _, s := range labeltest.Samples() {
		t.Run(s.Name, func(t *testing.T) {
			got, err := Encode(s.Label, profile)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", s.Name+".zpl")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if string(got) != string(want) {
				t.Errorf("differs from %s:\n got %q\nwant %q", path, got, want)
			}
		})
	}
}

func TestCommands(t *testing.T) {
	tests := []struct {
		name string
		els  []label.Element
		p    label.Profile
		want string
	}{
		{"text", []label.Element{label.Text{Text: "ab"}}, profile,
			"^XA^CI28^PW384^LL46^CF0,24^FO0,8^FDab^FS^XZ\n"},
		{"bold centered size 2", []label.Element{label.Text{Text: "A", Size: 2, Bold: true, Align: label.Center}}, profile,
			"^XA^CI28^PW384^LL76^CF0,48^FO0,8^FB384,1,0,C^FDA^FS^FO2,8^FB382,1,0,C^FDA^FS^XZ\n"},
		{"underline right", []label.Element{label.Text{Text: "ab", Underline: true, Align: label.Right}}, profile,
			"^XA^CI28^PW384^LL46^CF0,24^FO0,8^FB384,1,0,R^FDab^FS^FO356,34^GB28,2,2^FS^XZ\n"},
		{"escapes", []label.Element{label.Text{Text: "a^b~c_d é"}}, profile,
			"^XA^CI28^PW384^LL46^CF0,24^FO0,8^FH^FDa_5Eb_7Ec_5Fd é^FS^XZ\n"},
		{"cp1252", []label.Element{label.Text{Text: "€ “x”"}}, label.Profile{CodePage: "cp1252"},
			"^XA^CI27^PW384^LL46^CF0,24^FO0,8^FD\x80 \x93x\x94^FS^XZ\n"},
		{"ascii", []label.Element{label.Text{Text: "€ “x”"}}, label.Profile{CodePage: "ascii"},
			"^XA^CI0^PW384^LL46^CF0,24^FO0,8^FDEUR \"x\"^FS^XZ\n"},
		{"code128 centered", []label.Element{label.Code128{Data: "A>^~", Height: 50, Align: label.Center}}, profile,
			// 4 characters: 11*6+13 = 79 modules; with quiet zones 99, so
			// 3 dots per module (237 dots), x = (384-237)/2.
			"^XA^CI28^PW384^LL105^FO73,8^BY3^BCN,50,Y,N,N^FDA>0><>=^FS^XZ\n"},
		{"code128 no text", []label.Element{label.Code128{Data: "A", HideText: true}}, profile,
			"^XA^CI28^PW384^LL80^FO40,8^BY4^BCN,64,N,N,N^FDA^FS^XZ\n"},
		{"qr", []label.Element{label.QR{Data: "a_b", Module: 4, EC: label.ECH, Align: label.Right}}, profile,
			// version 1 at H holds 7 bytes: 21 modules * 4 = 84 dots.
			"^XA^CI28^PW384^LL110^FO284,8^BQN,2,4^FH^FDHA,a_5Fb^FS^XZ\n"},
		{"cut splits formats", []label.Element{label.Text{Text: "1"}, label.Cut{}, label.Text{Text: "2"}, label.Feed{Lines: 1}, label.Cut{}},
			label.Profile{LengthDots: 200},
			"^XA^CI28^PW384^LL200^CF0,24^FO0,8^FD1^FS^XZ\n" +
				"^XA^CI28^PW384^LL200^CF0,24^FO0,8^FD2^FS^XZ\n"},
		{"long text wraps in its block", []label.Element{label.Text{Text: "abcdefghijklmnopqrstuvwxyz", Size: 2}}, profile,
			// No space to wrap at and too wide at size 2: the layout
			// prints it at size 1, where it fits.
			"^XA^CI28^PW384^LL46^CF0,24^FO0,8^FDabcdefghijklmnopqrstuvwxyz^FS^XZ\n"},
		{"300 dpi", []label.Element{label.Text{Text: "x"}}, label.Profile{DPI: 300, WidthDots: 600},
			"^XA^CI28^PW600^LL68^CF0,35^FO0,12^FDx^FS^XZ\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Encode(label.Label{Elements: tt.els}, tt.p)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestRefuses(t *testing.T) {
	tests := []struct {
		name string
		l    label.Label
		p    label.Profile
		want string
	}{
		{"escpos profile", label.Label{Elements: []label.Element{label.Text{Text: "x"}}}, label.Profile{Language: label.ESCPOS}, "profile is for escpos"},
		// Too wide even at one dot per module: a version 25 symbol is
		// 117 modules, the paper 96 dots. (A QR that fits at a smaller
		// module, or a CODE128 too wide for the paper, is printed smaller
		// or as a QR code: package layout tests those.)
		{"qr too wide", label.Label{Elements: []label.Element{label.QR{Data: strings.Repeat("x", 500), Module: 8, EC: label.ECH}}}, label.Profile{WidthDots: 96}, "modules wide"},
	}
	for _, tt := range tests {
		_, err := Encode(tt.l, tt.p)
		if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, ErrEncode) {
			t.Errorf("%s: err = %v, want ErrEncode with %q", tt.name, err, tt.want)
		}
	}
}
