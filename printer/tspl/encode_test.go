package tspl

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"fieldkit/printer/label"
	"fieldkit/printer/label/labeltest"
	"fieldkit/printer/status"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

var profile = label.Profile{Language: label.TSPL, WidthDots: label.Width58mm}

func TestGolden(t *testing.T) {
	for _, s := range labeltest.Samples() {
		t.Run(s.Name, func(t *testing.T) {
			got, err := Encode(s.Label, profile)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", s.Name+".tspl")
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

const head = "SIZE 48 mm,%s mm\r\nGAP 3 mm,0 mm\r\nCODEPAGE 1252\r\nCLS\r\n"

func TestCommands(t *testing.T) {
	tests := []struct {
		name   string
		els    []label.Element
		length string
		want   string
	}{
		{"text", []label.Element{label.Text{Text: "ab"}}, "5.8", // 8+24+6+8 = 46 dots
			"TEXT 0,8,\"3\",0,1,1,\"ab\"\r\n"},
		{"bold centered size 2 with quote", []label.Element{label.Text{Text: `"A"`, Size: 2, Bold: true, Align: label.Center}}, "9.5",
			// 3 characters * 32 dots = 96, +1 for the bold strike: x = 143.
			"TEXT 143,8,\"3\",0,2,2,\"\\[\"]A\\[\"]\"\r\nTEXT 144,8,\"3\",0,2,2,\"\\[\"]A\\[\"]\"\r\n"},
		{"underline right", []label.Element{label.Text{Text: "ab", Underline: true, Align: label.Right}}, "5.8",
			"TEXT 352,8,\"3\",0,1,1,\"ab\"\r\nBAR 352,34,32,2\r\n"},
		{"cp1252 text", []label.Element{label.Text{Text: "€ é “x” ő"}}, "5.8",
			"TEXT 0,8,\"3\",0,1,1,\"\x80 \xe9 \x93x\x94 o\"\r\n"},
		// Words never split while a smaller size keeps them whole in two
		// lines: size 2 (12 characters a line).
		{"wrapped", []label.Element{label.Text{Text: "aaaa bbbb cccc", Size: 8}}, "17",
			"TEXT 0,8,\"3\",0,2,2,\"aaaa bbbb\"\r\nTEXT 0,68,\"3\",0,2,2,\"cccc\"\r\n"},
		{"code128", []label.Element{label.Code128{Data: "A-1", Height: 50, Align: label.Center}}, "12",
			// 11*5+13 = 68 modules, 4 dots each = 272, x = 56.
			"BARCODE 56,8,\"128\",50,2,0,4,4,\"A-1\"\r\n"},
		{"qr", []label.Element{label.QR{Data: "hi", Module: 4, EC: label.ECQ, Align: label.Right}}, "12.5",
			// Right, less its 4-module quiet zone.
			"QRCODE 284,8,Q,4,A,0,\"hi\"\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Encode(label.Label{Elements: tt.els}, profile)
			if err != nil {
				t.Fatal(err)
			}
			want := strings.Replace(head, "%s", tt.length, 1) + tt.want + "PRINT 1\r\n"
			if string(got) != want {
				t.Errorf("\n got %q\nwant %q", got, want)
			}
		})
	}
}

func TestCutSplitsLabels(t *testing.T) {
	got, err := Encode(label.Label{Elements: []label.Element{label.Text{Text: "1"}, label.Cut{}, label.Text{Text: "2"}}},
		label.Profile{LengthDots: 240, GapDots: 16, CodePage: "cp850"})
	if err != nil {
		t.Fatal(err)
	}
	h := "SIZE 48 mm,30 mm\r\nGAP 2 mm,0 mm\r\nCODEPAGE 850\r\nCLS\r\n"
	want := h + "TEXT 0,8,\"3\",0,1,1,\"1\"\r\nPRINT 1\r\nCUT\r\n" + h + "TEXT 0,8,\"3\",0,1,1,\"2\"\r\nPRINT 1\r\n"
	if string(got) != want {
		t.Errorf("\n got %q\nwant %q", got, want)
	}
}

func TestRefuses(t *testing.T) {
	tests := []struct {
		name string
		l    label.Label
		p    label.Profile
		want string
	}{
		{"zpl profile", label.Label{Elements: []label.Element{label.Text{Text: "x"}}}, label.Profile{Language: label.ZPL}, "profile is for zpl"},
		{"utf-8", label.Label{Elements: []label.Element{label.Text{Text: "x"}}}, label.Profile{CodePage: "utf-8"}, "code_page"},
		{"qr newline", label.Label{Elements: []label.Element{label.QR{Data: "a\nb"}}}, profile, "control character"},
	}
	for _, tt := range tests {
		_, err := Encode(tt.l, tt.p)
		if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, ErrEncode) {
			t.Errorf("%s: err = %v, want ErrEncode with %q", tt.name, err, tt.want)
		}
	}
}

func TestParseStatus(t *testing.T) {
	tests := []struct {
		b     byte
		want  status.State
		flags string
	}{
		{0x00, status.Ready, ""},
		{0x01, status.CoverOpen, "head open"},
		{0x02, status.Error, "paper jam"},
		{0x04, status.PaperOut, "paper out"},
		{0x05, status.CoverOpen, "head open,paper out"},
		{0x08, status.PaperOut, "ribbon out"},
		{0x10, status.Offline, "paused"},
		{0x20, status.Ready, "printing"},
		{0x40, status.CoverOpen, "cover open"},
		{0x80, status.Error, "temperature out of range"},
	}
	for _, tt := range tests {
		r := ParseStatus(tt.b)
		if r.State != tt.want || strings.Join(r.Flags, ",") != tt.flags {
			t.Errorf("0x%02x: %v, want %v (%s)", tt.b, r, tt.want, tt.flags)
		}
	}
	p := Probes()[0]
	if string(p.Query) != "\x1b!?" || p.Complete(nil) != 0 || p.Complete([]byte{0, 0}) != 1 {
		t.Fatal("probe")
	}
	if _, err := p.Parse([]byte{0, 1}); !errors.Is(err, ErrBadReply) {
		t.Fatalf("two bytes: %v", err)
	}
}

func FuzzParseStatus(f *testing.F) {
	f.Add([]byte{0})
	f.Add([]byte{0xff})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := Probes()[0].Parse(b)
		if err != nil && r.State != status.Error {
			t.Fatalf("bad reply reads as %v", r.State)
		}
		if err == nil && (r.State == status.Ready) != (b[0]&^0x20 == 0) {
			t.Fatalf("0x%02x reads as %v", b[0], r)
		}
	})
}

// SIZE and GAP follow the stock; content longer than a label goes on the
// next one, each the stock's length.
func TestMedia(t *testing.T) {
	p := label.Profile{Language: label.TSPL, WidthDots: 384, Media: label.Media{WidthMM: 50, HeightMM: 30, GapMM: 2}}
	var els []label.Element
	for i := 0; i < 10; i++ {
		els = append(els, label.Text{Text: "line", Size: 1})
	}
	got, err := Encode(label.Label{Elements: els}, p)
	if err != nil {
		t.Fatal(err)
	}
	head := "SIZE 50 mm,30 mm\r\nGAP 2 mm,0 mm\r\n"
	if n := strings.Count(string(got), head); n != 2 || strings.Count(string(got), "SIZE") != 2 || strings.Count(string(got), "PRINT 1") != 2 {
		t.Errorf("want two 30 mm labels:\n%s", got)
	}
}
