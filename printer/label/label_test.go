package label

import (
	"go.yaml.in/yaml/v3"

	"errors"
	"reflect"
	"strings"
	"testing"

	"fieldkit/internal/confutil"
)

func TestDecode(t *testing.T) {
	got, err := Decode([]byte(`{"id":"A-1042","elements":[
		{"text":"A-1042","size":4,"bold":true,"align":"center"},
		{"text":"Ada","underline":true,"align":"right"},
		{"qr":"https://example.com/r/1","size":6,"ec":"H","align":"center"},
		{"code128":"A-1042","height":40,"hri":false},
		{"feed":2},
		{"cut":true}]}`))
	if err != nil {
		t.Fatal(err)
	}
	want := Label{ID: "A-1042", Elements: []Element{
		Text{Text: "A-1042", Size: 4, Bold: true, Align: Center},
		Text{Text: "Ada", Underline: true, Align: Right},
		QR{Data: "https://example.com/r/1", Module: 6, EC: ECH, Align: Center},
		Code128{Data: "A-1042", Height: 40, HideText: true},
		Feed{Lines: 2},
		Cut{},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %#v\nwant %#v", got, want)
	}
	// Defaults read back as defaults.
	q := got.Elements[3].(Code128)
	if q.BarHeight() != 40 || (Code128{}).BarHeight() != DefaultHeight || (QR{}).ModuleSize() != DefaultModule || (Text{}).TextSize() != 1 {
		t.Fatal("defaults")
	}
}

func TestDecodeRefuses(t *testing.T) {
	long := strings.Repeat("x", MaxTextRunes+1)
	many := `{"elements":[` + strings.Repeat(`{"feed":1},`, MaxElements) + `{"text":"a"}]}`
	tests := []struct {
		name, in, want string
	}{
		{"empty input", ``, "empty input"},
		{"not an object", `[1]`, "want an object"},
		{"null", `null`, "want a JSON object"},
		{"unknown top key", `{"elements":[{"text":"a"}],"copies":2}`, `unknown key "copies"`},
		{"no elements key", `{"id":"x"}`, "no elements"},
		{"empty elements", `{"elements":[]}`, "no elements"},
		{"only feed", `{"elements":[{"feed":1},{"cut":true}]}`, "nothing to print"},
		{"too many", many, "at most 64"},
		{"unknown element key", `{"elements":[{"text":"a","colour":"red"}]}`, `elements[0]: text: unknown key "colour": want right, size, bold, underline, align`},
		{"key case", `{"elements":[{"TEXT":"a"}]}`, "no kind"},
		{"option of another kind", `{"elements":[{"text":"a","ec":"M"}]}`, `unknown key "ec"`},
		{"two kinds", `{"elements":[{"text":"a","qr":"b"}]}`, "one kind per element"},
		{"no kind", `{"elements":[{"size":2}]}`, "no kind"},
		{"size 0", `{"elements":[{"text":"a","size":0}]}`, "size 0 out of range: want 1-8"},
		{"size 9", `{"elements":[{"text":"a","size":9}]}`, "size 9 out of range: want 1-8"},
		{"size fraction", `{"elements":[{"text":"a","size":2.5}]}`, "text: size: got a JSON number 2.5, want a whole number"},
		{"size string", `{"elements":[{"text":"a","size":"big"}]}`, "got a JSON string, want a whole number"},
		{"bad align", `{"elements":[{"text":"a","align":"middle"}]}`, `align "middle": want left, center or right`},
		{"empty text", `{"elements":[{"text":""}]}`, "empty text"},
		{"newline", `{"elements":[{"text":"a\nb"}]}`, "control character U+000A"},
		{"long text", `{"elements":[{"text":"` + long + `"}]}`, "at most 128 per line"},
		{"bad utf8", "{\"elements\":[{\"text\":\"a\xffb\"}]}", "not valid UTF-8"},
		// Non-ASCII code128 data is accepted since package layout prints
		// it as a QR code with a warning; control characters are not.
		{"code128 control", `{"elements":[{"code128":"A\u0007"}]}`, "control character"},
		{"code128 long", `{"elements":[{"code128":"` + strings.Repeat("1", MaxCode128+1) + `"}]}`, "want 1-64"},
		{"code128 height", `{"elements":[{"code128":"A","height":4}]}`, "height 4 out of range: want 8-255"},
		{"qr empty", `{"elements":[{"qr":""}]}`, "data of 0 bytes"},
		{"qr big", `{"elements":[{"qr":"` + strings.Repeat("q", MaxQR+1) + `"}]}`, "want 1-512"},
		{"qr ec", `{"elements":[{"qr":"a","ec":"X"}]}`, `ec "X": want L, M, Q or H`},
		{"qr size", `{"elements":[{"qr":"a","size":17}]}`, "size 17 out of range: want 1-16"},
		{"feed 0", `{"elements":[{"text":"a"},{"feed":0}]}`, "feed 0 out of range"},
		{"feed option", `{"elements":[{"text":"a"},{"feed":1,"size":2}]}`, "feed takes no options"},
		{"cut false", `{"elements":[{"text":"a"},{"cut":false}]}`, "cut: want true"},
		{"bad id", `{"id":"a b","elements":[{"text":"a"}]}`, `id "a b"`},
		{"trailing", `{"elements":[{"text":"a"}]} {}`, "trailing data"},
		{"syntax", `{"elements":[{"text":"a"}`, "unexpected EOF"},
		{"huge", `{"elements":[{"text":"` + strings.Repeat(" ", MaxJSONBytes) + `"}]}`, "bytes of JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode([]byte(tt.in))
			if err == nil {
				t.Fatalf("Decode(%.60q) = nil error, want %q", tt.in, tt.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestValidateStructs(t *testing.T) {
	bad := []Label{
		{Elements: []Element{nil}},
		{Elements: []Element{Text{Text: "a", Size: -1}}},
		{Elements: []Element{Text{Text: "a", Align: 7}}},
		{Elements: []Element{QR{Data: "a", EC: 9}}},
		{Elements: []Element{Code128{Data: "a", Height: 300}}},
		{ID: strings.Repeat("i", MaxIDLen+1), Elements: []Element{Text{Text: "a"}}},
	}
	for i, l := range bad {
		if err := l.Validate(); err == nil {
			t.Errorf("bad[%d] %+v: Validate = nil", i, l)
		}
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	l := Label{ID: "x", Elements: []Element{
		Text{Text: "Grüße “quoted” €5", Size: 2, Bold: true, Underline: true, Align: Right},
		Code128{Data: "A-1", Height: 100, HideText: true, Align: Center},
		QR{Data: "<&>", Module: 3, EC: ECQ, Align: Right},
		Feed{Lines: 3}, Cut{},
	}}
	b, err := l.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Decode(b)
	if err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	if !reflect.DeepEqual(back, l) {
		t.Fatalf("round trip:\n got %#v\nwant %#v", back, l)
	}
}

func TestProfileValidate(t *testing.T) {
	tests := []struct {
		p    Profile
		want string // "" = valid
	}{
		{Profile{Language: ESCPOS}, ""},
		{Profile{Language: ZPL, WidthDots: 812, DPI: 203}, ""},
		{Profile{Language: TSPL, CodePage: "cp850"}, ""},
		{Profile{Language: "epl"}, "language"},
		{Profile{Language: ESCPOS, CodePage: "utf-8"}, "code_page"},
		{Profile{Language: ZPL, CodePage: "cp437"}, "code_page"},
		{Profile{Language: ESCPOS, DPI: 150}, "dpi"},
		{Profile{Language: ESCPOS, WidthDots: 10}, "width_dots"},
		{Profile{Language: TSPL, GapDots: -1}, "gap_dots"},
		{Profile{Language: ZPL, LengthDots: -5}, "length_dots"},
	}
	for _, tt := range tests {
		probs := confutil.NewProblems()
		tt.p.Validate(probs)
		switch {
		case tt.want == "" && !probs.Empty():
			t.Errorf("%+v: unexpected %v", tt.p, probs.List())
		case tt.want != "" && (probs.Empty() || probs.List()[0].Path != tt.want):
			t.Errorf("%+v: got %v, want a problem at %s", tt.p, probs.List(), tt.want)
		}
		if (tt.p.Check() == nil) != (tt.want == "") {
			t.Errorf("%+v: Check disagrees with Validate", tt.p)
		}
	}
	d := Profile{Language: ESCPOS}.WithDefaults()
	if d.WidthDots != 384 || d.DPI != 203 || d.CodePage != "cp858" || d.GapDots != 24 {
		t.Errorf("defaults: %+v", d)
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"elements":[{"text":"A-1042","size":4,"bold":true,"align":"center"},{"qr":"https://x","size":6,"ec":"M"},{"code128":"A-1042"},{"feed":2},{"cut":true}]}`,
		`{"id":"a","elements":[{"text":"é€“x”","underline":true,"align":"right"}]}`,
		`{"elements":[{"code128":"~ ","height":8,"hri":false}]}`,
		`{"elements":[{"text":"1 x Tee","right":"25.00 €","bold":true},{"code128":"Ü-1"}]}`,
		`{"elements":[{"text":"x","right":""}]}`,
		`{"elements":[{"text":null}]}`,
		`{"elements":[{"feed":null}]}`,
		`{"elements":{}}`,
		`{}`, `[]`, `"x"`, `null`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := Decode(data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if err := l.Validate(); err != nil {
			t.Fatalf("decoded label fails Validate: %v", err)
		}
		b, err := l.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		back, err := Decode(b)
		if err != nil {
			t.Fatalf("re-decode %s: %v", b, err)
		}
		if !reflect.DeepEqual(back, l) {
			t.Fatalf("round trip changed the label:\n%#v\n%#v", l, back)
		}
	})
}

func FuzzMediaYAML(f *testing.F) {
	for _, s := range []string{"continuous", "{width_mm: 58, height_mm: 40, gap_mm: 3}", "roll", "{height_mm: -1}", "[1,2]", "{colour: red}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var p struct {
			Media Media `yaml:"media"`
		}
		if err := yaml.Unmarshal([]byte("media: "+s), &p); err != nil {
			return
		}
		prof := Profile{Language: TSPL, Media: p.Media}
		if prof.Check() != nil {
			return
		}
		if h := prof.PageDots(); h < 0 || (p.Media.Continuous && h != 0) {
			t.Fatalf("media %+v: %d dots a label", p.Media, h)
		}
		if g := prof.GapDotsOf(); g < 0 {
			t.Fatalf("media %+v: gap %d", p.Media, g)
		}
	})
}
