// Package label is the printer-neutral label model: an ordered list of
// elements (text lines, CODE128 barcodes, QR codes, paper feed, cut) that
// the ESC/POS, ZPL and TSPL encoders turn into each printer's native
// commands, and the printer Profile that says which language, paper width
// and code page a printer takes.
//
// The JSON form, as accepted by Decode and produced by MarshalJSON:
//
//	{
//	  "id": "pickup-A-1042",                 // optional, [A-Za-z0-9._:-], ≤ 64
//	  "elements": [
//	    {"text": "A-1042", "size": 4, "bold": true, "underline": false, "align": "center"},
//	    {"code128": "A-1042", "height": 64, "hri": true, "align": "center"},
//	    {"qr": "https://example.com/r/1", "size": 6, "ec": "M", "align": "center"},
//	    {"feed": 2},
//	    {"cut": true}
//	  ]
//	}
//
// Each element has exactly one kind key (text, code128, qr, feed, cut) and
// only the options of that kind:
//
//	text     size 1-8 (character magnification, default 1), bold, underline,
//	         align left|center|right (default left); right: text printed
//	         flush right on the same line (a price). One line: no control
//	         characters; at most MaxTextRunes characters. Package layout
//	         wraps, shrinks or shortens what does not fit, in that order.
//	code128  data of 1-MaxCode128 characters; height in dots
//	         (8-255, default 64); hri: print the human-readable text under
//	         the bars (default true); align (default left). Data a
//	         CODE128 cannot carry (not printable ASCII, too wide for the
//	         paper) prints as a QR code and the job carries a warning.
//	qr       data of 1-MaxQR bytes; size = module size in dots (1-16,
//	         default 4); ec = error correction L, M, Q or H (default M);
//	         align (default left).
//	feed     blank lines to advance, 1-MaxFeed.
//	cut      must be true; cuts the paper (or ends the label on label stock).
//
// Decode is strict: unknown keys, an option of another kind, values out of
// range, an empty label, more than MaxElements elements and trailing data
// are all refused with the element index and what was expected.
package label
