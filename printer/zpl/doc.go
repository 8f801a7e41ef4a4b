// Package zpl encodes labels as ZPL II for Zebra and compatible label
// printers, with the printer's own scalable font, ^BC and ^BQ (no
// graphics), and parses the host status reply (~HS).
//
// Reference: Zebra "ZPL II Programming Guide". Layout: every element gets
// a field origin (^FO) at x, y in dots; text is set in font 0 (^A0) at
// 24 dots per size step (scaled for 300 and 600 dpi) inside a field block
// (^FB) as wide as the label, which does the alignment; barcodes and QR
// codes are placed at the x that aligns their computed width. Bold is a
// second copy of the field 2 dots to the right (font 0 has no bold
// variant); underline is a 2-dot box (^GB) under the estimated text width.
//
// A label is one format, ^XA ... ^XZ, with ^CI (character set), ^PW
// (print width) and ^LL (label length: the profile's, or the content's
// height). A cut element ends a format; elements after it start the next
// one, so the printer's cutter or tear-off acts between them.
//
// Field data: ^, ~ and _ (and control characters) in text and QR data
// go as ^FH hex escapes (_5E, _7E, _5F); in CODE128 data ^, > and ~ go
// as the invocation codes ><, >0 and >=.
package zpl
