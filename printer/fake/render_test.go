package fake

import (
	"bytes"
	"flag"
	"image"
	"image/draw"
	"os"
	"path/filepath"
	"testing"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/oned"
	"github.com/makiuchi-d/gozxing/qrcode"
)

var update = flag.Bool("update", false, "rewrite the testdata/*.png previews")

// crop copies r (grown by margin, clipped) onto white paper, as a scanner
// pointed at one symbol sees it.
func crop(img image.Image, r image.Rectangle, margin int) image.Image {
	r = r.Inset(-margin)
	out := image.NewGray(image.Rect(0, 0, r.Dx(), r.Dy()))
	for i := range out.Pix {
		out.Pix[i] = 0xFF
	}
	draw.Draw(out, out.Bounds(), img, r.Min, draw.Src)
	return out
}

func decodeQR(t *testing.T, img image.Image) string {
	t.Helper()
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	res, err := qrcode.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]interface{}{gozxing.DecodeHintType_TRY_HARDER: true})
	if err != nil {
		t.Fatalf("QR does not decode: %v", err)
	}
	return res.GetText()
}

func decodeCode128(t *testing.T, img image.Image) string {
	t.Helper()
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	res, err := oned.NewCode128Reader().Decode(bmp, map[gozxing.DecodeHintType]interface{}{gozxing.DecodeHintType_TRY_HARDER: true})
	if err != nil {
		t.Fatalf("CODE128 does not decode: %v", err)
	}
	return res.GetText()
}

// TestSymbolsDecodeBack renders the reference label of each language and
// reads its QR and CODE128 back with a barcode decoder.
func TestSymbolsDecodeBack(t *testing.T) {
	for _, lang := range []string{ESCPOS, ZPL, TSPL} {
		t.Run(lang, func(t *testing.T) {
			data := sample(lang)
			labels, err := Decode(lang, data, 576)
			if err != nil {
				t.Fatal(err)
			}
			if len(labels) != 1 || !labels[0].Complete {
				t.Fatalf("got %d labels (complete=%v), want 1 complete", len(labels), len(labels) > 0 && labels[0].Complete)
			}
			l := labels[0]
			if len(l.Unknown) != 0 {
				t.Errorf("unknown commands: %q", l.Unknown)
			}
			end := map[string]string{ESCPOS: "\x1dVB\x00", ZPL: "^XZ", TSPL: "PRINT 1,1\r\n"}[lang]
			if want := bytes.Index(data, []byte(end)) + len(end); l.Bytes != want {
				t.Errorf("label counts %d bytes, want %d (up to its end %q)", l.Bytes, want, end)
			}
			img := renderLabel(l, 576)
			var sawQR, sawBar bool
			for _, op := range l.Ops {
				switch op := op.(type) {
				case QR:
					sawQR = true
					r := image.Rect(op.X, op.Y, op.X+op.Size*op.Module, op.Y+op.Size*op.Module)
					if got := decodeQR(t, crop(img, r, 4*op.Module)); got != sampleURL {
						t.Errorf("QR reads %q, want %q", got, sampleURL)
					}
				case Barcode:
					sawBar = true
					r := image.Rect(op.X, op.Y, op.X+op.Width(), op.Y+op.Height)
					if got := decodeCode128(t, crop(img, r, 10*op.Module)); got != sampleCode {
						t.Errorf("CODE128 reads %q, want %q", got, sampleCode)
					}
				}
			}
			if !sawQR || !sawBar {
				t.Fatalf("label has QR=%v CODE128=%v, want both", sawQR, sawBar)
			}
			png, err := encodePNG(img)
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", "pickup-"+lang+".png")
			if *update {
				if err := os.WriteFile(golden, png, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// TestWholePreviewDecodes reads the QR from the full preview, not a crop:
// the layout leaves the symbol readable among the text.
func TestWholePreviewDecodes(t *testing.T) {
	for _, lang := range []string{ESCPOS, ZPL, TSPL} {
		t.Run(lang, func(t *testing.T) {
			imgs, err := Render(lang, sample(lang), 576)
			if err != nil {
				t.Fatal(err)
			}
			padded := crop(imgs[0], imgs[0].Bounds(), 24)
			if got := decodeQR(t, padded); got != sampleURL {
				t.Errorf("QR reads %q, want %q", got, sampleURL)
			}
		})
	}
}
