package fake

import (
	"fmt"
	"strconv"
	"strings"
)

// tsplFonts are the bitmap fonts "1".."8" of TSPL, cell width × height in
// dots at 203 dpi.
var tsplFonts = map[string][2]int{
	"1": {8, 12}, "2": {12, 20}, "3": {16, 24}, "4": {24, 32},
	"5": {32, 48}, "6": {14, 19}, "7": {21, 27}, "8": {14, 25},
}

// tspl decodes TSPL: text commands, one per line, drawing into an image
// buffer that PRINT prints (and keeps until CLS); ESC ! x are immediate
// commands that may arrive at any time; BITMAP carries raw bytes.
type tspl struct {
	width   int
	line    []byte
	raw     int // BITMAP bytes still to come
	rawOp   Raster
	esc     int // 1 after ESC, 2 after ESC !
	events  []Event
	cur     *Label
	dirty   bool // something drawn since the last PRINT
	cs      charset
	sizeW   int
	sizeH   int
	refX    int
	refY    int
	overrun bool
}

func newTSPL(width int) *tspl {
	d := &tspl{width: width, cs: cs850}
	d.cur = &Label{Lang: TSPL}
	return d
}

func (d *tspl) Feed(p []byte) []Event {
	d.events = nil
	for _, b := range p {
		d.cur.Bytes++
		switch {
		case d.raw > 0:
			d.rawOp.Bits = append(d.rawOp.Bits, b)
			d.raw--
			if d.raw == 0 {
				d.bitmapDone()
			}
		case d.esc == 1:
			d.esc = 0
			if b == '!' {
				d.esc = 2
			} else {
				d.cur.unknown(fmt.Sprintf("ESC %q", b))
			}
		case d.esc == 2:
			d.esc = 0
			if b == '?' {
				d.events = append(d.events, Event{Kind: EventQuery, Query: "ESC !?"})
			} else {
				d.cur.unknown(fmt.Sprintf("ESC !%c", b))
			}
		case b == esc:
			d.esc = 1
		case b == '\n':
			d.exec(d.line)
			d.line, d.overrun = d.line[:0], false
		default:
			if len(d.line) >= maxPending {
				d.overrun = true
				continue
			}
			d.line = append(d.line, b)
			if b == ',' && hasPrefixFold(d.line, "BITMAP ") {
				d.bitmapHeader()
			}
		}
	}
	return d.events
}

func (d *tspl) Flush() *Label {
	if len(d.line) > 0 {
		d.exec(d.line)
		d.line = d.line[:0]
	}
	l := d.cur
	d.cur = &Label{Lang: TSPL, Width: l.Width, Height: l.Height}
	if !d.dirty {
		return nil
	}
	d.dirty = false
	return l
}

func (d *tspl) Reset() {
	d.line, d.raw, d.esc, d.dirty = nil, 0, 0, false
	d.cur = &Label{Lang: TSPL, Width: d.sizeW, Height: d.sizeH}
}

func hasPrefixFold(b []byte, p string) bool {
	return len(b) >= len(p) && strings.EqualFold(string(b[:len(p)]), p)
}

// bitmapHeader starts the raw part of BITMAP x,y,width(bytes),height,mode,
// once the fifth comma arrives.
func (d *tspl) bitmapHeader() {
	args := strings.Split(string(d.line[len("BITMAP "):]), ",")
	if len(args) != 6 {
		return
	}
	for i := range args {
		args[i] = strings.TrimSpace(args[i])
	}
	wb := argInt(args, 2, 0, 0, maxDots/8)
	h := argInt(args, 3, 0, 0, maxDots)
	d.line = d.line[:0]
	if wb*h == 0 {
		d.cur.unknown("BITMAP (empty)")
		return
	}
	d.rawOp = Raster{X: argInt(args, 0, 0, 0, maxDots) + d.refX, Y: argInt(args, 1, 0, 0, maxDots) + d.refY, W: wb * 8, H: h}
	d.raw = wb * h
}

func (d *tspl) bitmapDone() {
	// In TSPL bitmaps a 0 bit prints; the op wants 1 = black.
	for i := range d.rawOp.Bits {
		d.rawOp.Bits[i] = ^d.rawOp.Bits[i]
	}
	d.draw(d.rawOp)
	d.rawOp = Raster{}
}

func (d *tspl) draw(op Op) {
	addOp(d.cur, op)
	d.dirty = true
}

func (d *tspl) exec(raw []byte) {
	if d.overrun {
		d.cur.unknown("line too long")
		return
	}
	s := strings.TrimSpace(strings.TrimSuffix(string(raw), "\r"))
	if s == "" {
		return
	}
	kw, rest, _ := strings.Cut(s, " ")
	kw = strings.ToUpper(kw)
	args := splitQuoted(rest)
	switch kw {
	case "SIZE":
		if len(args) >= 1 {
			d.sizeW = dimension(args[0])
		}
		if len(args) >= 2 {
			d.sizeH = dimension(args[1])
		}
		d.cur.Width, d.cur.Height = d.sizeW, d.sizeH
	case "CLS":
		d.cur.Ops = nil
		d.dirty = false
	case "TEXT":
		d.text(args)
	case "BARCODE":
		d.barcode(args)
	case "QRCODE":
		d.qrcode(args)
	case "BAR":
		d.draw(Box{X: d.ax(args, 0), Y: d.ay(args, 1), W: argInt(args, 2, 1, 1, maxDots), H: argInt(args, 3, 1, 1, maxDots), Thick: maxDots})
	case "BOX":
		x, y := d.ax(args, 0), d.ay(args, 1)
		xe, ye := d.ax(args, 2), d.ay(args, 3)
		d.draw(Box{X: x, Y: y, W: max(1, xe-x), H: max(1, ye-y), Thick: argInt(args, 4, 1, 1, maxDots)})
	case "PRINT":
		l := d.cur
		l.Complete = true
		l.Copies = argInt(args, 0, 1, 1, 999999999)
		d.events = append(d.events, Event{Kind: EventLabel, Label: l})
		// The image buffer stays until CLS: PRINT again prints it again.
		d.cur = &Label{Lang: TSPL, Width: d.sizeW, Height: d.sizeH, Ops: append([]Op(nil), l.Ops...)}
		d.dirty = false
	case "CODEPAGE":
		if cs, ok := tsplPages[strings.ToUpper(strings.TrimSpace(rest))]; ok {
			d.cs = cs
		} else {
			d.cur.unknown("CODEPAGE " + rest)
		}
	case "REFERENCE":
		d.refX, d.refY = argInt(args, 0, 0, 0, maxDots), argInt(args, 1, 0, 0, maxDots)
	case "CUT", "GAP", "BLINE", "DIRECTION", "DENSITY", "SPEED", "SET", "OFFSET", "SHIFT",
		"HOME", "FEED", "BACKFEED", "FORMFEED", "EOP", "LIMITFEED", "GAPDETECT":
		// Paper handling: nothing to draw.
	default:
		d.cur.unknown(kw)
	}
}

func (d *tspl) ax(args []string, i int) int { return argInt(args, i, 0, 0, maxDots) + d.refX }
func (d *tspl) ay(args []string, i int) int { return argInt(args, i, 0, 0, maxDots) + d.refY }

// text: TEXT x,y,"font",rotation,x-mul,y-mul,[alignment,]"content".
func (d *tspl) text(args []string) {
	if len(args) < 7 {
		d.cur.unknown("TEXT (missing parameters)")
		return
	}
	cell, ok := tsplFonts[args[2]]
	if !ok {
		cell = [2]int{12, 20} // scalable fonts: drawn with font 2's cell
	}
	xm, ym := argInt(args, 4, 1, 1, 10), argInt(args, 5, 1, 1, 10)
	t := Text{X: d.ax(args, 0), Y: d.ay(args, 1), CharW: cell[0] * xm, CharH: cell[1] * ym}
	t.Text = d.cs.decode([]byte(args[len(args)-1]))
	if len(args) >= 8 {
		w := t.CharW * len([]rune(t.Text))
		switch args[6] {
		case "2":
			t.X = max(0, t.X-w/2)
		case "3":
			t.X = max(0, t.X-w)
		}
	}
	d.draw(t)
}

// barcode: BARCODE x,y,"type",height,readable,rotation,narrow,wide,
// [alignment,]"content"; types 128 and 128M are drawn.
func (d *tspl) barcode(args []string) {
	if len(args) < 9 {
		d.cur.unknown("BARCODE (missing parameters)")
		return
	}
	typ := strings.ToUpper(args[2])
	if typ != "128" && typ != "128M" {
		d.cur.unknown("BARCODE " + typ)
		return
	}
	data := []byte(args[len(args)-1])
	codes, err := code128Auto(data)
	if err != nil {
		d.cur.unknown(fmt.Sprintf("BARCODE: %v", err))
		return
	}
	b := Barcode{X: d.ax(args, 0), Y: d.ay(args, 1), Data: string(data), Codes: codes,
		Height: argInt(args, 3, 50, 1, maxDots), Module: argInt(args, 6, 2, 1, 10)}
	d.draw(b)
	if hr := args[4]; hr == "1" || hr == "2" || hr == "3" {
		cw, ch := 12, 20
		tx := b.X
		switch hr {
		case "2":
			tx += max(0, (b.Width()-cw*len(data))/2)
		case "3":
			tx += max(0, b.Width()-cw*len(data))
		}
		d.draw(Text{X: tx, Y: b.Y + b.Height + 2, Text: string(data), CharW: cw, CharH: ch})
	}
}

// qrcode: QRCODE x,y,ECC,cell,mode,rotation,[model,mask,]"content".
func (d *tspl) qrcode(args []string) {
	if len(args) < 7 {
		d.cur.unknown("QRCODE (missing parameters)")
		return
	}
	ecc := byte('M')
	if e := strings.ToUpper(args[2]); len(e) == 1 && strings.Contains("LMQH", e) {
		ecc = e[0]
	}
	content := args[len(args)-1]
	if strings.EqualFold(args[4], "M") && len(content) > 0 {
		// Manual mode: a mode letter first; B is followed by a byte count.
		switch content[0] {
		case 'B':
			if n, err := strconv.Atoi(content[1:min(5, len(content))]); err == nil && len(content) >= 5 && n <= len(content)-5 {
				content = content[5 : 5+n]
			} else {
				content = content[1:]
			}
		case 'A', 'N', 'K':
			content = content[1:]
		}
	}
	text := d.cs.decode([]byte(content))
	q, err := newQR(d.ax(args, 0), d.ay(args, 1), text, argInt(args, 3, 4, 1, 10), ecc)
	if err != nil {
		d.cur.unknown(fmt.Sprintf("QRCODE: %v", err))
		return
	}
	d.draw(q)
}

// splitQuoted splits TSPL parameters at commas outside double quotes and
// unquotes strings, where \["] stands for a quote.
func splitQuoted(s string) []string {
	var out []string
	var cur strings.Builder
	inQ := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case inQ && strings.HasPrefix(s[i:], `\["]`):
			cur.WriteByte('"')
			i += 3
		case c == '"':
			inQ = !inQ
		case c == ',' && !inQ:
			out = append(out, strings.TrimSpace(cur.String()))
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	if cur.Len() > 0 || len(out) > 0 {
		out = append(out, strings.TrimSpace(cur.String()))
	}
	return out
}

// dimension converts a SIZE/GAP value to dots at 203 dpi: "50 mm", "400
// dot", or inches.
func dimension(s string) int {
	s = strings.ToLower(strings.TrimSpace(s))
	scale := 203.0
	switch {
	case strings.HasSuffix(s, "mm"):
		s, scale = strings.TrimSpace(strings.TrimSuffix(s, "mm")), 8
	case strings.HasSuffix(s, "dot"):
		s, scale = strings.TrimSpace(strings.TrimSuffix(s, "dot")), 1
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 || v*scale > maxDots {
		return 0
	}
	return int(v * scale)
}
