package label

import (
	"strings"
	"testing"

	"github.com/makiuchi-d/gozxing/qrcode/decoder"
	"github.com/makiuchi-d/gozxing/qrcode/encoder"
)

// The capacity table must agree with a real QR encoder: for each level and
// a spread of lengths, the version we predict is the one it chooses.
func TestQRVersionMatchesEncoder(t *testing.T) {
	levels := map[ECLevel]decoder.ErrorCorrectionLevel{
		ECL: decoder.ErrorCorrectionLevel_L, ECM: decoder.ErrorCorrectionLevel_M,
		ECQ: decoder.ErrorCorrectionLevel_Q, ECH: decoder.ErrorCorrectionLevel_H,
	}
	for ec, zl := range levels {
		for _, n := range []int{1, 7, 8, 14, 15, 26, 27, 42, 43, 45, 84, 85, 106, 200, 287, 288, 400, 511, 512} {
			// Lower case keeps the encoder in byte mode, as printers use.
			data := strings.Repeat("h", n)
			q := QR{Data: data, EC: ec}
			got, err := q.Version()
			if n > MaxQR {
				continue
			}
			if err != nil {
				t.Fatalf("%v %d: %v", ec, n, err)
			}
			code, err := encoder.Encoder_encode(data, zl, nil)
			if err != nil {
				t.Fatalf("encoder %v %d: %v", ec, n, err)
			}
			if want := code.GetVersion().GetVersionNumber(); got != want {
				t.Errorf("level %v, %d bytes: version %d, encoder chose %d", ec, n, got, want)
			}
		}
	}
}

func TestFits(t *testing.T) {
	q := QR{Data: strings.Repeat("u", 45), Module: 6} // version 4: 33 modules
	if w, _ := q.WidthDots(); w != 33*6 {
		t.Fatalf("width %d", w)
	}
	if err := q.CheckFits(384); err != nil {
		t.Fatal(err)
	}
	if err := (QR{Data: strings.Repeat("u", 300), Module: 16}).CheckFits(384); err == nil {
		t.Fatal("a 16-dot QR of 300 bytes fits 384 dots?")
	}
	c := Code128{Data: "A-1042"}
	if c.Modules() != 101 {
		t.Fatalf("modules %d", c.Modules())
	}
	if m, err := c.BarModule(384); err != nil || m != 3 {
		t.Fatalf("module %d, %v", m, err)
	}
	if _, err := (Code128{Data: strings.Repeat("X", 30)}).BarModule(384); err == nil {
		t.Fatal("30 characters fit 58 mm?")
	}
	if Center.Offset(100, 384) != 142 || Right.Offset(100, 384) != 284 || Left.Offset(100, 384) != 0 || Center.Offset(500, 384) != 0 {
		t.Fatal("Offset")
	}
}
