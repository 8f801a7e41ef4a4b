// Package escpos encodes labels as ESC/POS, the command language of
// Epson-compatible receipt printers, using the printer's own text,
// barcode and QR commands, a raster (GS v 0) only for text the code page
// lacks, and builds and parses the real-time status queries (DLE EOT n).
// Package layout decides where things go; ESC/POS prints line after
// line, so the encoder feeds the paper (ESC J) to each band's top.
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
//	LF                     print the line (a right part is padded with
//	                       spaces to its measured column: font A is monospaced)
//	ESC J n                feed n dots (quiet zones, feeds, the end of a label)
//	GS v 0 0 xL xH yL yH   raster of a line the code page cannot spell
//	GS h n, GS w n, GS H n barcode height, module width, HRI below (2) or none (0)
//	GS k 73 n {B data      CODE128 in code set B ('{' sent as "{{")
//	GS ( k ... 49 67..81   QR: module size, EC level, store, print (model 2
//	                       is the printers' default and is not sent)
//	GS V 65 0              feed to the cutter and cut
//
// Styles are only sent when they change, which keeps a pickup label well
// under 300 bytes.
package escpos
