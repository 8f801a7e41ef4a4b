// Package lang picks the encoder and the status probes for a printer
// profile's language, so that the printer service handles ESC/POS, ZPL
// and TSPL printers through one call each.
package lang

import (
	"fmt"

	"fieldkit/printer/escpos"
	"fieldkit/printer/label"
	"fieldkit/printer/layout"
	"fieldkit/printer/status"
	"fieldkit/printer/tspl"
	"fieldkit/printer/zpl"
)

// Job is a label encoded for one printer: the bytes it is sent, the
// layout they were drawn from (for previews), and what did not print as
// asked.
type Job struct {
	Bytes    []byte
	Layout   *layout.Layout
	Warnings []string
}

// Render lays l out for p and encodes it in p's language.
func Render(l label.Label, p label.Profile) (Job, error) {
	lay, err := layout.For(l, p, p.Language)
	if err != nil {
		return Job{}, fmt.Errorf("%s: %w", p.Language, err)
	}
	var b []byte
	switch p.Language {
	case label.ESCPOS:
		b, err = escpos.EncodeLayout(lay)
	case label.ZPL:
		b, err = zpl.EncodeLayout(lay)
	case label.TSPL:
		b, err = tspl.EncodeLayout(lay)
	default:
		err = fmt.Errorf("printer language %q: want escpos, zpl or tspl", p.Language)
	}
	if err != nil {
		return Job{}, err
	}
	return Job{Bytes: b, Layout: lay, Warnings: lay.Warnings}, nil
}

// Encode renders l in the language of p.
func Encode(l label.Label, p label.Profile) ([]byte, error) {
	switch p.Language {
	case label.ESCPOS:
		return escpos.Encode(l, p)
	case label.ZPL:
		return zpl.Encode(l, p)
	case label.TSPL:
		return tspl.Encode(l, p)
	}
	return nil, fmt.Errorf("printer language %q: want escpos, zpl or tspl", p.Language)
}

// Probes returns the status exchanges for language: write each Query,
// read until Complete (with a timeout of a few hundred ms), Parse, and
// merge the reports with status.Worst. No reply is state Unknown, never
// Ready.
func Probes(language label.Language) ([]status.Probe, error) {
	switch language {
	case label.ESCPOS:
		return escpos.Probes(), nil
	case label.ZPL:
		return zpl.Probes(), nil
	case label.TSPL:
		return tspl.Probes(), nil
	}
	return nil, fmt.Errorf("printer language %q: want escpos, zpl or tspl", language)
}
