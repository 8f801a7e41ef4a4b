// Package tspl encodes labels as TSPL/TSPL2, the command language of TSC
// label printers and the many compatible "thermal label printers", with
// the built-in bitmap fonts, BARCODE and QRCODE, BITMAP for text the
// fonts lack, and parses the one-byte status reply to ESC !?. Where
// things go is package layout's business.
//
// Reference: TSC "TSPL/TSPL2 Programming Language" manual. A label is:
//
//	SIZE w mm,h mm        the media's width and label length (continuous: the content's)
//	GAP g mm,0 mm         the media's gap between die-cut labels
//	CODEPAGE n            437, 850 or 1252 (ascii goes as 437)
//	CLS
//	TEXT x,y,"3",0,s,s,"…"            font 3 is 16×24 dots, multiplied by the size
//	BAR x,y,w,2                       underline
//	BARCODE x,y,"128",h,r,0,m,m,"…"   r = 2: human-readable text centred below
//	QRCODE x,y,L|M|Q|H,cell,A,0,"…"
//	BITMAP x,y,wbytes,h,0,data        raw rows, a 0 bit prints
//	PRINT 1
//	CUT                   for a cut element; elements after it start a new label
//
// Lines end in CR LF. Inside quotes a double quote goes as \["]; TSPL has
// no escape for control characters, so QR data holding one is refused.
// Bitmap fonts are monospaced, so alignment is an x computed from the
// character count after transliteration; bold is a second copy one dot to
// the right.
package tspl
