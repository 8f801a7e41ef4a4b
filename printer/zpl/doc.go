// Package zpl encodes labels as ZPL II for Zebra and compatible label
// printers, with the printer's own scalable font, ^BC and ^BQ, ^GFA for
// text font 0 lacks (Cyrillic, Greek), and parses the host status reply
// (~HS).
//
// Reference: Zebra "ZPL II Programming Guide". Package layout places
// everything; every item gets a field origin (^FO) at its x, y in dots.
// Text is font 0 (^CF0,h once per size, 24 dots per size step, scaled for
// 300 and 600 dpi). Centred and right-aligned text is justified by the
// printer in a one-line field block (^FB w,1,0,C|R) as wide as the layout
// measured, so the proportional font lines up; left text needs no block.
// A QR field origin is set 10 dots above where the symbol must land: the
// printer draws ^BQ that far below its ^FO. Bold is a second copy of the
// field 2 dots over (font 0 has no bold variant); underline is a 2-dot box
// (^GB) under the measured text width.
//
// A label is one format, ^XA ... ^XZ, with ^CI (character set), ^PW
// (print width) and ^LL (label length: the media's on die-cut stock, or
// the content's height). A cut element, or the end of a die-cut label,
// ends a format; what follows starts the next one.
//
// Field data: ^, ~ and _ (and control characters) in text and QR data
// go as ^FH hex escapes (_5E, _7E, _5F); in CODE128 data ^, > and ~ go
// as the invocation codes ><, >0 and >=.
package zpl
