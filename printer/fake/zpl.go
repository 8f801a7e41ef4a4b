package fake

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// zpl decodes ZPL II. A command runs from its prefix (^ or ~) to the next
// prefix, so a command is executed when the next one starts; the few with
// no parameters that the host waits on (^XZ, ^FS, ~HS, ^XA) run as soon as
// their code is complete.
type zpl struct {
	width   int
	cmd     []byte // current command from its prefix; nil between commands
	events  []Event
	cur     *Label
	inLabel bool
	ci      int
	cfH     int // ^CF default font
	cfW     int
	byW     int // ^BY module width, default barcode height
	byH     int
	lhX     int // ^LH label home
	lhY     int
	f       zplField
}

// zplField is the state a field builds up until ^FS.
type zplField struct {
	x, y     int
	baseline bool // ^FT: y is the baseline
	fontH    int
	fontW    int
	block    *zplBlock
	hex      bool
	hexChar  byte
	data     []byte
	barcode  *zplBarcode
	qr       *zplQR
}

type zplBlock struct {
	width, lines, spacing int
	just                  byte
}

type zplBarcode struct {
	height int
	hri    bool
	above  bool
	hasHgt bool
}

type zplQR struct {
	mag int
	ecc byte
}

func newZPL(width int) *zpl {
	d := &zpl{width: width, cfH: 9, cfW: 5, byW: 2, byH: 10}
	d.cur = &Label{Lang: ZPL}
	return d
}

func (d *zpl) Feed(p []byte) []Event {
	d.events = nil
	for _, b := range p {
		d.cur.Bytes++
		if b == '^' || b == '~' {
			if d.cmd != nil {
				d.exec()
			}
			d.cmd = append(d.cmd[:0], b)
			continue
		}
		if d.cmd == nil {
			continue // white space between commands
		}
		if len(d.cmd) < maxPending {
			d.cmd = append(d.cmd, b)
		}
		if len(d.cmd) == 3 {
			switch strings.ToUpper(string(d.cmd)) {
			case "^XA", "^XZ", "^FS", "~HS":
				d.exec()
			}
		}
	}
	return d.events
}

func (d *zpl) Flush() *Label {
	if d.cmd != nil {
		d.exec()
	}
	l := d.cur
	d.cur = &Label{Lang: ZPL}
	d.inLabel = false
	if len(l.Ops) == 0 {
		return nil
	}
	return l
}

func (d *zpl) Reset() {
	d.cmd = nil
	d.cur = &Label{Lang: ZPL}
	d.inLabel = false
	d.f = zplField{}
}

func (d *zpl) exec() {
	cmd := d.cmd
	d.cmd = nil
	if len(cmd) < 3 {
		if len(bytes.TrimSpace(cmd)) > 1 {
			d.cur.unknown(string(cmd))
		}
		return
	}
	prefix, params := cmd[0], cmd[3:]
	if prefix == '^' && (cmd[1] == 'A' || cmd[1] == 'a') {
		d.font(cmd[2], params)
		return
	}
	code := strings.ToUpper(string(cmd[1:3]))
	if prefix == '~' {
		if code == "HS" {
			d.events = append(d.events, Event{Kind: EventQuery, Query: "~HS"})
		} else {
			d.cur.unknown("~" + code)
		}
		return
	}
	args := splitArgs(params)
	switch code {
	case "XA":
		d.inLabel = true
		d.lhX, d.lhY = 0, 0
		d.f = zplField{}
	case "XZ":
		if d.inLabel || len(d.cur.Ops) > 0 {
			d.cur.Complete = true
			if d.cur.Copies == 0 {
				d.cur.Copies = 1
			}
			d.events = append(d.events, Event{Kind: EventLabel, Label: d.cur})
			d.cur = &Label{Lang: ZPL}
		}
		d.inLabel = false
	case "FO", "FT":
		d.f.x = argInt(args, 0, 0, 0, maxDots)
		d.f.y = argInt(args, 1, 0, 0, maxDots)
		d.f.baseline = code == "FT"
	case "CF":
		if h := argInt(args, 1, 0, 1, maxFont); h > 0 {
			d.cfH = h
			def := h * 2 / 3
			if len(args) > 0 && args[0] == "0" {
				def = font0Advance(h)
			}
			d.cfW = argInt(args, 2, def, 1, maxFont)
		}
	case "FB":
		just := byte('L')
		if len(args) > 3 && len(args[3]) > 0 {
			just = strings.ToUpper(args[3])[0]
		}
		d.f.block = &zplBlock{
			width:   argInt(args, 0, 0, 0, maxDots),
			lines:   argInt(args, 1, 1, 1, 9999),
			spacing: argInt(args, 2, 0, -9999, 9999),
			just:    just,
		}
	case "FD", "FV":
		d.f.data = append([]byte(nil), params...)
	case "FH":
		d.f.hex = true
		d.f.hexChar = '_'
		if len(params) > 0 {
			d.f.hexChar = params[0]
		}
	case "FS":
		d.field()
		d.f = zplField{x: d.f.x, y: d.f.y}
	case "BC":
		bc := &zplBarcode{hri: true}
		if len(args) > 1 && args[1] != "" {
			bc.height, bc.hasHgt = argInt(args, 1, 0, 1, maxDots), true
		}
		if len(args) > 2 && strings.EqualFold(args[2], "N") {
			bc.hri = false
		}
		if len(args) > 3 && strings.EqualFold(args[3], "Y") {
			bc.above = true
		}
		d.f.barcode, d.f.qr = bc, nil
	case "BY":
		d.byW = argInt(args, 0, d.byW, 1, 10)
		d.byH = argInt(args, 2, d.byH, 1, maxDots)
	case "BQ":
		q := &zplQR{mag: argInt(args, 2, 3, 1, 10), ecc: 'Q'}
		if len(args) > 3 && len(args[3]) == 1 && strings.Contains("HQML", strings.ToUpper(args[3])) {
			q.ecc = strings.ToUpper(args[3])[0]
		}
		d.f.qr, d.f.barcode = q, nil
	case "CI":
		d.ci = argInt(args, 0, 0, 0, 36)
	case "PW":
		d.cur.Width = argInt(args, 0, 0, 0, maxDots)
	case "LL":
		d.cur.Height = argInt(args, 0, 0, 0, maxDots)
	case "LH":
		d.lhX = argInt(args, 0, 0, 0, maxDots)
		d.lhY = argInt(args, 1, 0, 0, maxDots)
	case "PQ":
		d.cur.Copies = argInt(args, 0, 1, 1, 99999999)
	case "GB":
		w := argInt(args, 0, 1, 1, maxDots)
		h := argInt(args, 1, 1, 1, maxDots)
		t := argInt(args, 2, 1, 1, maxDots)
		addOp(d.cur, Box{X: d.f.x + d.lhX, Y: d.f.y + d.lhY, W: max(w, t), H: max(h, t), Thick: t})
	case "GF":
		d.graphicField(args)
	case "FX":
		// comment
	default:
		d.cur.unknown("^" + code)
	}
}

// font handles ^Af o,h,w: the font for the next field only.
func (d *zpl) font(name byte, params []byte) {
	args := splitArgs(params)
	h := argInt(args, 1, d.cfH, 1, maxFont)
	d.f.fontH = h
	def := h * 2 / 3
	if name == '0' {
		def = font0Advance(h)
	}
	d.f.fontW = argInt(args, 2, def, 1, maxFont)
	// Every font draws with the built-in glyphs, at its cell size.
}

// font0Advance is the cell the fake gives font 0 (CG Triumvirate Bold
// Condensed) at height h: half the height, about its average advance, so
// that the fixed-cell glyphs take the room the printer's proportional ones
// do.
func font0Advance(h int) int { return max(h/2, 1) }

// field prints what the field collected, at ^FO/^FT plus ^LH.
func (d *zpl) field() {
	data := d.f.data
	if d.f.hex {
		data = unhex(data, d.f.hexChar)
	}
	x, y := d.f.x+d.lhX, d.f.y+d.lhY
	switch {
	case d.f.barcode != nil:
		bc := d.f.barcode
		h := d.byH
		if bc.hasHgt {
			h = bc.height
		}
		codes, text, err := code128ZPL(data)
		if err != nil {
			d.cur.unknown(fmt.Sprintf("^BC: %v", err))
			return
		}
		if d.f.baseline {
			y -= h
		}
		sym := Barcode{X: x, Y: y, Data: text, Codes: codes, Module: d.byW, Height: h}
		addOp(d.cur, sym)
		if bc.hri {
			cw, ch := 10, 18
			tx := x + max(0, (sym.Width()-cw*len(text))/2)
			ty := y + h + 2
			if bc.above {
				ty = y - ch - 2
			}
			addOp(d.cur, Text{X: tx, Y: max(0, ty), Text: text, CharW: cw, CharH: ch})
		}
	case d.f.qr != nil:
		ecc, text := zplQRData(data, d.f.qr.ecc)
		if !d.f.baseline {
			// Printers draw ^BQ below its ^FO by the ^BY bar height
			// (10 dots unless set), as independent renderers do too.
			y += d.byH
		}
		q, err := newQR(x, y, text, d.f.qr.mag, ecc)
		if err != nil {
			d.cur.unknown(fmt.Sprintf("^BQ: %v", err))
			return
		}
		addOp(d.cur, q)
	default:
		if len(data) == 0 {
			return
		}
		h, w := d.f.fontH, d.f.fontW
		if h == 0 {
			h, w = d.cfH, d.cfW
		}
		text := zplPage(d.ci).decode(data)
		if d.f.baseline {
			y -= h
		}
		if d.f.block == nil {
			addOp(d.cur, Text{X: x, Y: max(0, y), Text: text, CharW: w, CharH: h})
			return
		}
		b := d.f.block
		for i, line := range wrap(text, b.width/max(1, w), b.lines) {
			lx := x
			lw := len([]rune(line)) * w
			switch b.just {
			case 'C':
				lx += max(0, (b.width-lw)/2)
			case 'R':
				lx += max(0, b.width-lw)
			}
			addOp(d.cur, Text{X: lx, Y: max(0, y+i*(h+b.spacing)), Text: line, CharW: w, CharH: h})
		}
	}
}

// graphicField draws ^GFA,b,c,d,data at the field origin: ASCII hex
// rows of d bytes, with ZPL's shorthand: G-Y and g-z repeat the next
// digit 1-19 and 20-400 times, "," ends a row with white and ":" repeats
// the row before.
func (d *zpl) graphicField(args []string) {
	if len(args) < 5 || !strings.EqualFold(args[0], "A") {
		d.cur.unknown("^GF (only the ASCII hex form is modelled)")
		return
	}
	total := argInt(args, 1, 0, 0, maxPending)
	stride := argInt(args, 3, 0, 0, maxDots/8)
	if stride == 0 || total == 0 {
		d.cur.unknown("^GF (empty)")
		return
	}
	data := strings.Join(args[4:], ",")
	var bits, row, prev []byte
	nibble, half := byte(0), false
	endRow := func() {
		for len(row) < stride {
			row = append(row, 0)
		}
		bits = append(bits, row[:stride]...)
		prev, row = row[:stride], nil
	}
	put := func(h byte) {
		if half {
			row = append(row, nibble<<4|h)
			if len(row) == stride {
				endRow()
			}
		} else {
			nibble = h
		}
		half = !half
	}
	count := 0
	for i := 0; i < len(data) && len(bits) < total; i++ {
		c := data[i]
		switch {
		case c >= 'G' && c <= 'Y':
			count += int(c-'G') + 1
		case c >= 'g' && c <= 'z':
			count += (int(c-'g') + 1) * 20
		case c == ',':
			half = false
			endRow()
		case c == ':':
			half = false
			if prev != nil {
				row = append(row[:0], prev...)
			}
			endRow()
		default:
			v, err := strconv.ParseUint(string(c), 16, 8)
			if err != nil {
				continue
			}
			for n := max(count, 1); n > 0; n-- {
				put(byte(v))
			}
			count = 0
		}
	}
	if len(row) > 0 {
		endRow()
	}
	h := len(bits) / stride
	addOp(d.cur, Raster{X: d.f.x + d.lhX, Y: d.f.y + d.lhY, W: stride * 8, H: h, Bits: bits})
}

// zplQRData splits ^BQ field data "QA,text" (error correction, input
// mode, comma) from the text; manual mode "MM,Btext"/"MM,Ntext" carries a
// character mode, and B a four-digit byte count.
func zplQRData(data []byte, ecc byte) (byte, string) {
	s := string(data)
	i := strings.IndexByte(s, ',')
	if i < 0 || i > 2 {
		return ecc, s
	}
	if i >= 1 && strings.Contains("HQML", strings.ToUpper(s[:1])) {
		ecc = strings.ToUpper(s[:1])[0]
	}
	mode := byte('A')
	if i == 2 {
		mode = s[1]
	}
	s = s[i+1:]
	if mode == 'M' && len(s) > 0 {
		switch s[0] {
		case 'B', 'b':
			if len(s) >= 5 {
				if n, err := strconv.Atoi(s[1:5]); err == nil && n <= len(s)-5 {
					return ecc, s[5 : 5+n]
				}
			}
			return ecc, s[1:]
		case 'N', 'A', 'n', 'a':
			return ecc, s[1:]
		}
	}
	return ecc, s
}

// unhex replaces ^FH escapes (indicator and two hex digits) with the byte.
func unhex(b []byte, ind byte) []byte {
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] == ind && i+2 < len(b) {
			if v, err := strconv.ParseUint(string(b[i+1:i+3]), 16, 8); err == nil {
				out = append(out, byte(v))
				i += 2
				continue
			}
		}
		out = append(out, b[i])
	}
	return out
}

// wrap breaks s into at most maxLines lines of at most cols characters,
// at spaces where it can; "\&" forces a break, as in ^FB.
func wrap(s string, cols, maxLines int) []string {
	cols = max(cols, 1)
	var lines []string
	for _, para := range strings.Split(s, `\&`) {
		line := []rune{}
		for _, word := range strings.Fields(para) {
			w := []rune(word)
			for len(w) > 0 {
				sep := 0
				if len(line) > 0 {
					sep = 1
				}
				if len(line)+sep+len(w) <= cols {
					if sep == 1 {
						line = append(line, ' ')
					}
					line = append(line, w...)
					w = nil
					continue
				}
				if len(line) > 0 {
					lines = append(lines, string(line))
					line = line[:0]
					continue
				}
				line = append(line, w[:cols]...)
				w = w[cols:]
			}
		}
		lines = append(lines, string(line))
		if len(lines) >= maxLines {
			break
		}
	}
	if len(lines) > maxLines {
		lines = lines[:maxLines]
	}
	return lines
}

// splitArgs splits comma-separated parameters, trimming white space.
func splitArgs(p []byte) []string {
	if len(p) == 0 {
		return nil
	}
	parts := strings.Split(string(p), ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}

// argInt is args[i] as an integer clamped to [lo, hi], or def when the
// argument is missing or not a number.
func argInt(args []string, i, def, lo, hi int) int {
	if i >= len(args) || args[i] == "" {
		return def
	}
	v, err := strconv.Atoi(args[i])
	if err != nil {
		return def
	}
	return min(max(v, lo), hi)
}
