package fake

import (
	"bytes"
	"fmt"
)

// ESC/POS control bytes.
const (
	nul = 0x00
	stx = 0x02
	etx = 0x03
	eot = 0x04
	enq = 0x05
	ht  = 0x09
	lf  = 0x0A
	ff  = 0x0C
	cr  = 0x0D
	dle = 0x10
	dc4 = 0x14
	esc = 0x1B
	fs  = 0x1C
	gs  = 0x1D
)

// Font A is 12×24 dots, font B 9×17, at 203 dpi.
const (
	fontAW, fontAH = 12, 24
	fontBW, fontBH = 9, 17
	defaultSpacing = 30 // ESC 2: about 1/6 inch
)

type escposStyle struct {
	fontB, bold, underline bool
	wmul, hmul             int
	align                  int // 0 left, 1 centre, 2 right
}

type run struct {
	text            []rune
	bold, underline bool
	cw, ch          int
}

// escpos is a line printer: text collects in a line buffer that LF prints
// at the current paper position; barcodes, QR codes and rasters print at
// once; a cut ends the label.
type escpos struct {
	width   int
	pend    []byte
	skip    int // payload bytes still to discard
	events  []Event
	cur     *Label
	ended   bool // the command just stepped ends the label
	y       int
	st      escposStyle
	cs      charset
	line    []run
	lineW   int
	spacing int
	bcH     int
	bcW     int
	hri     int
	qrMod   int
	qrECC   byte
	qrData  []byte
}

func newESCPOS(width int) *escpos {
	d := &escpos{width: width, cs: cs437}
	d.defaults()
	d.cur = &Label{Lang: ESCPOS}
	return d
}

// defaults is the state after power-on or ESC @.
func (d *escpos) defaults() {
	d.st = escposStyle{wmul: 1, hmul: 1}
	d.line, d.lineW = nil, 0
	d.spacing = defaultSpacing
	d.bcH, d.bcW, d.hri = 162, 3, 0
	d.qrMod, d.qrECC, d.qrData = 3, 'L', nil
}

func (d *escpos) Feed(p []byte) []Event {
	d.events = nil
	if d.skip > 0 {
		n := min(d.skip, len(p))
		d.skip -= n
		d.cur.Bytes += n
		p = p[n:]
	}
	d.pend = append(d.pend, p...)
	i := 0
	for i < len(d.pend) {
		n, ok := d.step(d.pend[i:])
		if !ok {
			break
		}
		d.cur.Bytes += n
		i += n
		if d.skip > 0 {
			k := min(d.skip, len(d.pend)-i)
			d.skip -= k
			d.cur.Bytes += k
			i += k
		}
		if d.ended {
			d.ended = false
			d.finish(true)
		}
	}
	d.pend = append(d.pend[:0], d.pend[i:]...)
	return d.events
}

func (d *escpos) finish(complete bool) {
	l := d.cur
	l.Complete = complete
	d.events = append(d.events, Event{Kind: EventLabel, Label: l})
	d.cur = &Label{Lang: ESCPOS}
	d.y = 0
}

func (d *escpos) Flush() *Label {
	d.printLine()
	l := d.cur
	d.cur = &Label{Lang: ESCPOS}
	d.y = 0
	if len(l.Ops) == 0 {
		return nil
	}
	return l
}

func (d *escpos) Reset() {
	d.pend, d.skip = nil, 0
	d.line, d.lineW = nil, 0
	d.cur = &Label{Lang: ESCPOS}
	d.y = 0
}

// step decodes the command at the start of b, returning its length, or
// ok=false when b holds only part of it.
func (d *escpos) step(b []byte) (n int, ok bool) {
	need := func(k int) bool { return len(b) >= k }
	switch c := b[0]; c {
	case lf, ff:
		d.printLine()
		return 1, true
	case cr, nul:
		return 1, true
	case ht:
		d.addText([]byte{' '})
		return 1, true
	case dle:
		return d.stepDLE(b)
	case esc:
		if !need(2) {
			return 0, false
		}
		return d.stepESC(b)
	case gs:
		if !need(2) {
			return 0, false
		}
		return d.stepGS(b)
	case fs:
		if !need(2) {
			return 0, false
		}
		n := map[byte]int{'!': 3, 'C': 3, '-': 3, 'p': 4}[b[1]]
		if n == 0 {
			n = 2
		}
		if !need(n) {
			return 0, false
		}
		d.cur.unknown(fmt.Sprintf("FS %q", b[1]))
		return n, true
	default:
		if c < 0x20 {
			d.cur.unknown(fmt.Sprintf("0x%02X", c))
			return 1, true
		}
		// A run of printable bytes in one go.
		k := 1
		for k < len(b) && b[k] >= 0x20 {
			k++
		}
		d.addText(b[:k])
		return k, true
	}
}

func (d *escpos) stepDLE(b []byte) (int, bool) {
	if len(b) < 3 {
		return 0, false
	}
	switch b[1] {
	case eot:
		if b[2] >= 1 && b[2] <= 4 {
			d.events = append(d.events, Event{Kind: EventQuery, Query: fmt.Sprintf("DLE EOT %d", b[2]), N: int(b[2])})
		} else {
			d.cur.unknown(fmt.Sprintf("DLE EOT %d", b[2]))
		}
		return 3, true
	case dc4:
		if len(b) < 5 {
			return 0, false
		}
		d.cur.unknown("DLE DC4")
		return 5, true
	}
	d.cur.unknown(fmt.Sprintf("DLE 0x%02X", b[1]))
	return 2, true
}

func (d *escpos) stepESC(b []byte) (int, bool) {
	// Fixed-length commands: total length including ESC.
	fixed := map[byte]int{
		'@': 2, '!': 3, 'E': 3, 'G': 3, '-': 3, 'a': 3, 't': 3, 'd': 3, 'J': 3,
		'2': 2, '3': 3, 'M': 3, 'i': 2, 'm': 2, 'V': 3, '{': 3, 'R': 3, ' ': 3,
		'U': 3, 'r': 3, '%': 3, '?': 3, '=': 3, 'p': 5, '$': 4, '\\': 4, 'c': 4,
		'T': 3, 'W': 10, 'L': 2, 'S': 2, 'e': 3, 'K': 3,
	}
	switch b[1] {
	case '*':
		if len(b) < 5 {
			return 0, false
		}
		m, k := b[2], int(b[3])+int(b[4])<<8
		var size int
		switch m {
		case 0, 1:
			size = k
		case 32, 33:
			size = 3 * k
		default:
			d.cur.unknown(fmt.Sprintf("ESC * m=%d", m))
			return 5, true
		}
		if 5+size > maxPending {
			d.cur.unknown("ESC * (too large)")
			d.skip = size
			return 5, true
		}
		if len(b) < 5+size {
			return 0, false
		}
		d.columnImage(m, k, b[5:5+size])
		return 5 + size, true
	case 'D':
		// Tab stops, up to 32, ended by NUL.
		if i := bytes.IndexByte(b[2:min(len(b), 35)], nul); i >= 0 {
			return 3 + i, true
		}
		if len(b) >= 35 {
			d.cur.unknown("ESC D (unterminated)")
			return 2, true
		}
		return 0, false
	case '&':
		return d.userChars(b)
	}
	n, known := fixed[b[1]]
	if !known {
		d.cur.unknown(fmt.Sprintf("ESC %q", b[1]))
		return 2, true
	}
	if len(b) < n {
		return 0, false
	}
	arg := byte(0)
	if n >= 3 {
		arg = b[2]
	}
	switch b[1] {
	case '@':
		d.defaults()
	case '!':
		d.st.fontB = arg&0x01 != 0
		d.st.bold = arg&0x08 != 0
		d.st.hmul = 1 + int(arg>>4&1)
		d.st.wmul = 1 + int(arg>>5&1)
		d.st.underline = arg&0x80 != 0
	case 'E', 'G':
		d.st.bold = arg&1 != 0
	case '-':
		d.st.underline = arg%48 != 0
	case 'a':
		d.printLineIfAny()
		d.st.align = int(arg % 48)
		if d.st.align > 2 {
			d.st.align = 0
		}
	case 't':
		if cs, ok := escposPages[arg]; ok {
			d.cs = cs
		} else {
			d.cur.unknown(fmt.Sprintf("ESC t %d", arg))
		}
	case 'd':
		d.printLineIfAny()
		d.y += int(arg) * d.spacing
	case 'J':
		d.printLineIfAny()
		d.y += int(arg)
	case '2':
		d.spacing = defaultSpacing
	case '3':
		d.spacing = int(arg)
	case 'M':
		d.st.fontB = arg%48 == 1
	case 'i', 'm':
		d.printLineIfAny()
		d.cur.Cut = true
		d.ended = true
	default:
		d.cur.unknown(fmt.Sprintf("ESC %q", b[1]))
	}
	return n, true
}

// userChars skips ESC & y c1 c2 [x d1..d(y×x)]...: user-defined glyphs.
func (d *escpos) userChars(b []byte) (int, bool) {
	if len(b) < 5 {
		return 0, false
	}
	y, c1, c2 := int(b[2]), int(b[3]), int(b[4])
	i := 5
	for c := c1; c <= c2 && c-c1 < 256; c++ {
		if len(b) <= i {
			return 0, false
		}
		i += 1 + y*int(b[i])
		if i > maxPending {
			d.cur.unknown("ESC & (too large)")
			return 2, true
		}
	}
	if len(b) < i {
		return 0, false
	}
	d.cur.unknown("ESC &")
	return i, true
}

func (d *escpos) stepGS(b []byte) (int, bool) {
	fixed := map[byte]int{
		'!': 3, 'h': 3, 'w': 3, 'H': 3, 'f': 3, 'B': 3, 'b': 3, 'a': 3, 'r': 3,
		'I': 3, 'L': 4, 'W': 4, '$': 4, '\\': 4, 'P': 4, '/': 3, 'T': 3, ':': 2, '^': 5,
	}
	switch b[1] {
	case 'V':
		if len(b) < 3 {
			return 0, false
		}
		n := 3
		if m := b[2]; m == 65 || m == 66 || m == 97 || m == 98 || m == 103 || m == 104 {
			n = 4
		}
		if len(b) < n {
			return 0, false
		}
		d.printLineIfAny()
		d.cur.Cut = true
		d.ended = true
		return n, true
	case 'k':
		return d.barcode(b)
	case '(':
		if len(b) < 5 {
			return 0, false
		}
		size := int(b[3]) + int(b[4])<<8
		if len(b) < 5+size {
			return 0, false
		}
		if b[2] == 'k' {
			d.symbol(b[5 : 5+size])
		} else {
			d.cur.unknown(fmt.Sprintf("GS ( %c", b[2]))
		}
		return 5 + size, true
	case 'v':
		if len(b) < 8 {
			return 0, false
		}
		if b[2] != '0' {
			d.cur.unknown("GS v")
			return 3, true
		}
		xb, h := int(b[4])+int(b[5])<<8, int(b[6])+int(b[7])<<8
		size := xb * h
		if 8+size > maxPending {
			d.cur.unknown("GS v 0 (too large)")
			d.skip = size
			return 8, true
		}
		if len(b) < 8+size {
			return 0, false
		}
		d.printLineIfAny()
		d.rasterOp(xb*8, h, append([]byte(nil), b[8:8+size]...))
		return 8 + size, true
	case '8':
		if len(b) < 7 {
			return 0, false
		}
		size := int(b[3]) | int(b[4])<<8 | int(b[5])<<16 | int(b[6])<<24
		d.cur.unknown("GS 8 L")
		d.skip = size
		return 7, true
	case '*':
		if len(b) < 4 {
			return 0, false
		}
		d.cur.unknown("GS *")
		d.skip = int(b[2]) * int(b[3]) * 8
		return 4, true
	}
	n, known := fixed[b[1]]
	if !known {
		d.cur.unknown(fmt.Sprintf("GS %q", b[1]))
		return 2, true
	}
	if len(b) < n {
		return 0, false
	}
	arg := b[2%n] // GS : has no argument; b[0] is harmless then
	switch b[1] {
	case '!':
		d.st.wmul = 1 + int(arg>>4&7)
		d.st.hmul = 1 + int(arg&7)
	case 'h':
		d.bcH = max(1, int(arg))
	case 'w':
		if arg >= 1 && arg <= 6 {
			d.bcW = int(arg)
		}
	case 'H':
		d.hri = int(arg % 48)
	case 'f':
	default:
		d.cur.unknown(fmt.Sprintf("GS %q", b[1]))
	}
	return n, true
}

func (d *escpos) barcode(b []byte) (int, bool) {
	if len(b) < 4 {
		return 0, false
	}
	m := b[2]
	if m <= 6 {
		i := bytes.IndexByte(b[3:min(len(b), 259)], nul)
		if i < 0 {
			if len(b) >= 259 {
				d.cur.unknown("GS k (unterminated)")
				return 3, true
			}
			return 0, false
		}
		d.cur.unknown(fmt.Sprintf("GS k %d", m))
		return 4 + i, true
	}
	if m < 65 || m > 79 {
		d.cur.unknown(fmt.Sprintf("GS k %d", m))
		return 3, true
	}
	n := int(b[3])
	if len(b) < 4+n {
		return 0, false
	}
	if m != 73 {
		d.cur.unknown(fmt.Sprintf("GS k %d", m))
		return 4 + n, true
	}
	codes, text, err := code128ESCPOS(b[4 : 4+n])
	if err != nil {
		d.cur.unknown(fmt.Sprintf("GS k 73: %v", err))
		return 4 + n, true
	}
	d.printLineIfAny()
	bc := Barcode{Data: text, Codes: codes, Module: d.bcW, Height: d.bcH}
	bc.X = d.alignX(bc.Width())
	hriW, hriH := fontAW, fontAH
	if d.hri == 1 || d.hri == 3 {
		d.hriText(text, hriW, hriH)
	}
	bc.Y = d.y
	addOp(d.cur, bc)
	d.y += bc.Height
	if d.hri == 2 || d.hri == 3 {
		d.hriText(text, hriW, hriH)
	}
	return 4 + n, true
}

func (d *escpos) hriText(s string, cw, ch int) {
	w := cw * len(s)
	addOp(d.cur, Text{X: d.alignX(w), Y: d.y, Text: s, CharW: cw, CharH: ch})
	d.y += ch
}

// symbol handles GS ( k: cn 49 is QR; fn 65 model, 67 module size, 69
// error correction, 80 store data, 81 print.
func (d *escpos) symbol(p []byte) {
	if len(p) < 2 {
		d.cur.unknown("GS ( k (short)")
		return
	}
	cn, fn := p[0], p[1]
	if cn != 49 {
		d.cur.unknown(fmt.Sprintf("GS ( k cn=%d fn=%d", cn, fn))
		return
	}
	arg := byte(0)
	if len(p) >= 3 {
		arg = p[2]
	}
	switch fn {
	case 65:
	case 67:
		if arg >= 1 && arg <= 16 {
			d.qrMod = int(arg)
		}
	case 69:
		if e, ok := map[byte]byte{48: 'L', 49: 'M', 50: 'Q', 51: 'H'}[arg]; ok {
			d.qrECC = e
		}
	case 80:
		if len(p) < 3 {
			d.qrData = nil
			return
		}
		d.qrData = append([]byte(nil), p[3:]...)
	case 81:
		d.printLineIfAny()
		q, err := newQR(0, d.y, string(d.qrData), d.qrMod, d.qrECC)
		if err != nil {
			d.cur.unknown(fmt.Sprintf("GS ( k print QR: %v", err))
			return
		}
		q.X = d.alignX(q.Size * q.Module)
		addOp(d.cur, q)
		d.y += q.Size * q.Module
	default:
		d.cur.unknown(fmt.Sprintf("GS ( k QR fn=%d", fn))
	}
}

// columnImage converts ESC * column data (8 or 24 dots tall, most
// significant bit on top) to a raster; single density doubles each column.
func (d *escpos) columnImage(m byte, k int, data []byte) {
	d.printLineIfAny()
	rows, dx := 8, 1
	if m >= 32 {
		rows = 24
	}
	if m == 0 || m == 32 {
		dx = 2
	}
	w := k * dx
	stride := (w + 7) / 8
	bits := make([]byte, stride*rows)
	bpc := rows / 8
	for col := 0; col < k; col++ {
		for r := 0; r < rows; r++ {
			if data[col*bpc+r/8]&(0x80>>(r%8)) == 0 {
				continue
			}
			for j := 0; j < dx; j++ {
				x := col*dx + j
				bits[r*stride+x/8] |= 0x80 >> (x % 8)
			}
		}
	}
	d.rasterOp(w, rows, bits)
}

func (d *escpos) rasterOp(w, h int, bits []byte) {
	addOp(d.cur, Raster{X: d.alignX(w), Y: d.y, W: w, H: h, Bits: bits})
	d.y += h
}

func (d *escpos) alignX(w int) int {
	switch d.st.align {
	case 1:
		return max(0, (d.width-w)/2)
	case 2:
		return max(0, d.width-w)
	}
	return 0
}

func (d *escpos) cell() (int, int) {
	if d.st.fontB {
		return fontBW * d.st.wmul, fontBH * d.st.hmul
	}
	return fontAW * d.st.wmul, fontAH * d.st.hmul
}

// addText puts characters into the line buffer, printing the line when
// the next character would run past the paper edge, as printers wrap.
func (d *escpos) addText(b []byte) {
	cw, ch := d.cell()
	for _, r := range []rune(d.cs.decode(b)) {
		if d.lineW+cw > d.width && d.lineW > 0 {
			d.printLine()
		}
		n := len(d.line)
		if n == 0 || d.line[n-1].bold != d.st.bold || d.line[n-1].underline != d.st.underline ||
			d.line[n-1].cw != cw || d.line[n-1].ch != ch {
			d.line = append(d.line, run{bold: d.st.bold, underline: d.st.underline, cw: cw, ch: ch})
			n++
		}
		if len(d.line[n-1].text) < 4096 {
			d.line[n-1].text = append(d.line[n-1].text, r)
			d.lineW += cw
		}
	}
}

func (d *escpos) printLineIfAny() {
	if len(d.line) > 0 {
		d.printLine()
	}
}

// printLine prints the line buffer (or feeds one line when it is empty),
// runs sharing a bottom edge.
func (d *escpos) printLine() {
	h := 0
	for _, r := range d.line {
		h = max(h, r.ch)
	}
	x := d.alignX(d.lineW)
	for _, r := range d.line {
		addOp(d.cur, Text{X: x, Y: d.y + h - r.ch, Text: string(r.text), CharW: r.cw, CharH: r.ch, Bold: r.bold, Underline: r.underline})
		x += r.cw * len(r.text)
	}
	d.y += max(h, d.spacing)
	if d.y > maxDots {
		d.y = maxDots
	}
	d.line, d.lineW = nil, 0
}
