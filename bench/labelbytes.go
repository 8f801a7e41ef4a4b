package main

import (
	"context"
	"flag"
	"fmt"

	"fieldkit/printer/label"
	"fieldkit/printer/lang"
	"fieldkit/printer/template"
)

func init() { register("label-bytes", labelBytes) }

// labelBytes reports the bytes on the wire for the reference pickup label
// (template.SamplePickup: order number large, buyer name, three items,
// bold total, QR of a 45-character URL, CODE128, cut) in each language,
// with native commands only.
func labelBytes(_ context.Context, args []string) error {
	fs := flag.NewFlagSet("label-bytes", flag.ContinueOnError)
	width := fs.Int("width", label.Width58mm, "paper width in dots (384 = 58 mm, 576 = 80 mm at 203 dpi)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	for _, lg := range label.Languages {
		prof := label.Profile{Language: lg, WidthDots: *width}
		l, err := template.Render(template.SamplePickup(), prof)
		if err != nil {
			return fmt.Errorf("%s: %w", lg, err)
		}
		b, err := lang.Encode(l, prof)
		if err != nil {
			return fmt.Errorf("%s: %w", lg, err)
		}
		emit("label-bytes", string(lg)+"_bytes", float64(len(b)), "B")
	}
	return nil
}
