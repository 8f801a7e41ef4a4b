package fake

import (
	"image"
	"testing"

	"fieldkit/printer/label"
	"fieldkit/printer/lang"
)

// What each language's bytes draw on the fake printer lands where the
// layout put it, bitmaps of the text the printer fonts lack included:
// preview and printer agree.
func TestBytesAgreeWithLayout(t *testing.T) {
	l := label.Label{Elements: []label.Element{
		label.Text{Text: "Наталья Гончарова", Size: 2, Align: label.Center},
		label.Text{Text: "Grüße ß €", Right: "1.00"},
		label.QR{Data: "https://fieldkit.example/r/1", Module: 4, Align: label.Center},
		label.Code128{Data: "A-1042", Height: 48, Align: label.Center},
		label.Cut{},
	}}
	for _, lg := range label.Languages {
		prof := label.Profile{Language: lg, WidthDots: 384}
		j, err := lang.Render(l, prof)
		if err != nil {
			t.Fatal(err)
		}
		labels, err := Decode(string(lg), j.Bytes, 384)
		if err != nil || len(labels) != 1 {
			t.Fatalf("%s: %d labels, %v", lg, len(labels), err)
		}
		got := labels[0]
		if len(got.Unknown) != 0 {
			t.Errorf("%s: commands the fake does not know: %q", lg, got.Unknown)
		}
		var raster, qr, bc int
		for _, op := range got.Ops {
			switch op := op.(type) {
			case Raster:
				raster++
			case QR:
				qr++
				want := j.Layout.Pages[0].Items[findKind(j, "qr")].Box
				if (image.Point{op.X, op.Y}) != want.Min {
					t.Errorf("%s: QR at %d,%d, the layout put it at %v", lg, op.X, op.Y, want.Min)
				}
			case Barcode:
				bc++
			case Text:
				if lg != label.ZPL && op.Text == "Grüße ß €" && op.X != 0 {
					t.Errorf("%s: text at x %d", lg, op.X)
				}
			}
		}
		if raster != 1 || qr != 1 || bc != 1 {
			t.Errorf("%s: %d rasters, %d QR, %d barcodes; want 1 each", lg, raster, qr, bc)
		}
	}
}

func findKind(j lang.Job, kind string) int {
	for i, it := range j.Layout.Pages[0].Items {
		if it.Kind.String() == kind {
			return i
		}
	}
	return -1
}

// A cp858 printer prints ü, ß and €; the fake draws them, not boxes.
func TestFakeDrawsCP858Letters(t *testing.T) {
	for _, r := range "üß€" {
		if glyphFor(r) == missing {
			t.Errorf("%q drawn as a box", r)
		}
	}
}
