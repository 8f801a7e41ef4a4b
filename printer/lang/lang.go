// Package lang picks the encoder and the status probes for a printer
// profile's language, so that the printer service handles ESC/POS, ZPL
// and TSPL printers through one call each.
package lang

import (
	"fmt"

	"fieldkit/printer/escpos"
	"fieldkit/printer/label"
	"fieldkit/printer/status"
	"fieldkit/printer/tspl"
	"fieldkit/printer/zpl"
)

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
