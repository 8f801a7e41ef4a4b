package lang_test

import (
	"testing"

	"fieldkit/printer/label"
	"fieldkit/printer/lang"
	"fieldkit/printer/template"
)

// The reference pickup label stays small on the wire at 58 mm: ≤ 300 B
// of ESC/POS, ≤ 600 B of ZPL (bench label-bytes reports the figures).
func TestReferenceLabelBytes(t *testing.T) {
	for lg, limit := range map[label.Language]int{label.ESCPOS: 300, label.ZPL: 600, label.TSPL: 1024} {
		prof := label.Profile{Language: lg, WidthDots: label.Width58mm}
		l, err := template.Render(template.SamplePickup(), prof)
		if err != nil {
			t.Fatal(err)
		}
		j, err := lang.Render(l, prof)
		if err != nil {
			t.Fatal(err)
		}
		if len(j.Bytes) > limit || len(j.Warnings) != 0 {
			t.Errorf("%s: %d bytes (limit %d), warnings %q", lg, len(j.Bytes), limit, j.Warnings)
		}
	}
}
