// Package escpos encodes labels as ESC/POS, the command language of
// Epson-compatible receipt printers, using the printer's own text,
// barcode and QR commands (no raster), and builds and parses the
// real-time status queries (DLE EOT n).
//
// Reference: Epson "ESC/POS Application Programming Guide" and the
// command reference of the TM-T20/TM-T88 series; the commands used here
// are common to the Epson-compatible printers sold as 58 mm and 80 mm
// "POS printers".
//
// Commands emitted, in order of use:
//
//	ESC @                  initialise (styles back to default)
//	ESC t n                character code table, see CodeTable
//	ESC a n                justification 0 left, 1 center, 2 right
//	GS ! n                 character size: (width-1)<<4 | (height-1)
//	ESC E n                bold on/off
//	ESC - n                underline 0 off, 1 one dot
//	LF                     print the line
//	GS h n, GS w n, GS H n barcode height, module width, HRI below (2) or none (0)
//	GS k 73 n {B data      CODE128 in code set B ('{' sent as "{{")
//	GS ( k ... 49 65..81   QR: model 2, module size, EC level, store, print
//	ESC d n                feed n lines
//	GS V 65 0              feed to the cutter and cut
//
// Styles are only sent when they change, which keeps a pickup label well
// under 300 bytes.
package escpos
