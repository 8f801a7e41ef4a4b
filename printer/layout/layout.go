// Package layout places a label's elements on the printer's paper, in
// dots, before any encoder sees them: text measured in the printer's own
// font after transliteration (œ → oe counts two characters), codes with
// their quiet zones, nothing overlapping, labels paginated onto die-cut
// stock. The ESC/POS, ZPL and TSPL encoders and the previews all draw the
// same Layout, so what the preview shows is what the printer prints.
//
// Content that does not fit degrades in this order, and never silently:
//
//  1. text wraps at spaces onto a second line;
//  2. then it gets a smaller magnification, down to 1;
//  3. then, at magnification 1, it is cut with an ellipsis (a warning);
//  4. a CODE128 that cannot be one (not printable ASCII, too wide for the
//     paper) is printed as a QR code of the same data (a warning);
//  5. characters the printer's font lacks are drawn as a bitmap with the
//     Go fonts (Latin, Greek, Cyrillic); what those lack too (emoji)
//     prints as "?" and is counted in a warning.
//
// A QR code wider than the paper even at one dot per module, or an element
// taller than a die-cut label, is an error: the label cannot be printed.
package layout

import (
	"errors"
	"fmt"
	"image"
	"strings"
	"unicode"
	"unicode/utf8"

	"fieldkit/printer/codepage"
	"fieldkit/printer/label"
)

// ErrFit is wrapped by errors for labels that cannot be laid out on the
// profile's paper.
var ErrFit = errors.New("label does not fit the printer")

// Kind is what an Item draws.
type Kind uint8

// Item kinds.
const (
	TextItem Kind = iota + 1
	BitmapItem
	Code128Item
	QRItem
)

func (k Kind) String() string {
	switch k {
	case TextItem:
		return "text"
	case BitmapItem:
		return "bitmap"
	case Code128Item:
		return "code128"
	case QRItem:
		return "qr"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Item is one thing drawn on a page.
type Item struct {
	// Elem is the index of the label element the item comes from.
	Elem int
	Kind Kind
	// Box is the rectangle the item inks, in dots from the page's
	// top-left corner. Quiet is Box grown by the quiet zone a code needs
	// (4 modules for QR, 10 to each side for CODE128); no other item's Box
	// enters it. For text, Quiet is Box.
	Box, Quiet image.Rectangle

	// TextItem: one line in the printer's resident font, spelled with
	// characters it has. The printer places it with justification Just
	// in the field [FieldX, FieldX+FieldW) at Box.Min.Y; Box is where the
	// measured text lands.
	Text            string
	Size            int
	CellH           int // dots of the font's cell height at Size
	Bold, Underline bool
	Just            label.Align
	FieldX, FieldW  int

	// BitmapItem: drawn with its top-left corner at Box.Min.
	Bitmap *Bitmap

	// Code128Item and QRItem.
	Data      string
	Module    int
	BarHeight int  // Code128Item: bars only; Box adds the HRI line
	HRI       bool // Code128Item
	EC        label.ECLevel
	// Version is a QRItem's symbol version. Box is the symbol itself;
	// a ZPL field origin goes Metrics.QROffset above it.
	Version int
}

// Page is one label (or, on receipt paper, the stretch up to a cut).
type Page struct {
	Items []Item
	// Height is the label's length: the media's on die-cut stock, else
	// the content's plus the bottom margin.
	Height int
	// Cut is true when a cut element ended the page.
	Cut bool
}

// Layout is a label placed for one printer.
type Layout struct {
	Profile label.Profile
	Metrics Metrics
	Pages   []Page
	// Warnings say what did not print as asked, for the job, the API and
	// the CLI.
	Warnings []string
	// Unprintable counts characters no font could draw (printed as "?").
	Unprintable int
}

// Place lays l out for the printer p. The label must be valid.
func Place(l label.Label, p label.Profile) (*Layout, error) {
	p = p.WithDefaults()
	m, ok := metrics[p.Language]
	if !ok {
		return nil, fmt.Errorf("layout: printer language %q: want escpos, zpl or tspl", p.Language)
	}
	if err := l.Validate(); err != nil {
		return nil, err
	}
	if p.Language == label.ZPL && p.DPI != 203 {
		sc := func(n int) int { return (n*p.DPI + 101) / 203 }
		m.CellH, m.Pitch, m.Margin, m.BoldExtra = sc(m.CellH), sc(m.Pitch), sc(m.Margin), sc(m.BoldExtra)
	}
	page, err := codepage.Lookup(p.CodePage)
	if err != nil {
		return nil, fmt.Errorf("layout: %w", err)
	}
	pl := &placer{lay: &Layout{Profile: p, Metrics: m}, m: m, w: p.WidthDots, pageH: p.PageDots(), page: page}
	pl.newPage()
	for i, el := range l.Elements {
		if err := pl.element(i, el); err != nil {
			return nil, fmt.Errorf("%w: elements[%d]: %v", ErrFit, i, err)
		}
	}
	pl.endPage(false)
	if n := pl.lay.Unprintable; n > 0 {
		pl.lay.Warnings = append(pl.lay.Warnings, fmt.Sprintf("%d character(s) no printer or bitmap font has (emoji, symbols) printed as ?", n))
	}
	return pl.lay, nil
}

type placer struct {
	lay   *Layout
	m     Metrics
	w     int
	pageH int
	page  *codepage.Page
	cur   *Page
	y     int
	// ink is the bottom of the last item's box on this page (-1: none);
	// clear the clearance that item wants below it.
	ink, clear int
}

func (pl *placer) newPage() {
	pl.cur = &Page{}
	pl.y = pl.m.Margin
	pl.ink, pl.clear = -1, 0
}

// endPage closes the current page unless it is empty and not cut.
func (pl *placer) endPage(cut bool) {
	if len(pl.cur.Items) == 0 && !cut {
		return
	}
	pl.cur.Cut = cut
	if pl.pageH > 0 {
		pl.cur.Height = pl.pageH
	} else {
		pl.cur.Height = pl.y + pl.m.Margin
		for _, it := range pl.cur.Items {
			pl.cur.Height = max(pl.cur.Height, it.Box.Max.Y+pl.m.Margin)
		}
	}
	pl.lay.Pages = append(pl.lay.Pages, *pl.cur)
	pl.newPage()
}

// reserve finds the top of a band h dots tall that wants clear dots of
// white paper between it and the previous item, starting a new label on
// die-cut stock when the band would run past the end of this one.
func (pl *placer) reserve(h, clear int) (int, error) {
	y := pl.y
	if pl.ink >= 0 {
		y = max(y, pl.ink+max(clear, pl.clear))
	}
	if pl.pageH > 0 {
		room := pl.pageH - 2*pl.m.Margin
		if h > room {
			return 0, fmt.Errorf("%d dots tall, the label holds %d: use longer labels or a smaller element", h, room)
		}
		if y+h > pl.pageH-pl.m.Margin {
			pl.endPage(false)
			y = pl.y
		}
	}
	return y, nil
}

func (pl *placer) add(it Item, clear int) {
	if it.Quiet.Empty() {
		it.Quiet = it.Box
	}
	pl.cur.Items = append(pl.cur.Items, it)
	pl.ink = max(pl.ink, it.Box.Max.Y)
	pl.clear = clear
}

func (pl *placer) warn(format string, args ...any) {
	pl.lay.Warnings = append(pl.lay.Warnings, fmt.Sprintf(format, args...))
}

func (pl *placer) element(i int, el label.Element) error {
	switch el := el.(type) {
	case label.Text:
		return pl.text(i, el)
	case label.Code128:
		return pl.code128(i, el)
	case label.QR:
		return pl.qr(i, el)
	case label.Feed:
		pl.y += el.Lines * pl.m.LineAdvance(1)
		if pl.pageH > 0 && pl.y > pl.pageH-pl.m.Margin {
			pl.endPage(false)
		}
	case label.Cut:
		pl.endPage(true)
	default:
		return fmt.Errorf("unsupported element %T", el)
	}
	return nil
}

// code128 places a CODE128 symbol, or a QR code of its data when the
// data or the paper does not allow one.
func (pl *placer) code128(i int, c label.Code128) error {
	mod, err := c.BarModule(pl.w)
	switch {
	case !label.IsCode128(c.Data):
		pl.warn("elements[%d]: %q cannot be a CODE128 (only printable ASCII can); printed as a QR code", i, c.Data)
		return pl.qr(i, label.QR{Data: c.Data, Module: 4, Align: c.Align})
	case err != nil:
		pl.warn("elements[%d]: CODE128 %q is too wide for %d dots of paper; printed as a QR code", i, c.Data, pl.w)
		return pl.qr(i, label.QR{Data: c.Data, Module: 4, Align: c.Align})
	}
	symW := c.Modules() * mod
	quiet := 10 * mod
	h := c.BarHeight()
	if pl.lay.Profile.Language == label.ZPL {
		h = (h*pl.lay.Profile.DPI + 101) / 203
	}
	boxH := h
	if !c.HideText {
		boxH += pl.m.HRIHeight(symW, mod)
	}
	x := c.Align.Offset(symW, pl.w)
	if pl.lay.Profile.Language != label.ESCPOS {
		// Languages that position by coordinates keep the quiet zone on
		// the paper whatever the alignment; ESC/POS aligns by itself.
		x = min(max(x, quiet), pl.w-symW-quiet)
	}
	clear := max(8, 2*mod)
	y, err := pl.reserve(boxH, clear)
	if err != nil {
		return err
	}
	box := image.Rect(x, y, x+symW, y+boxH)
	pl.add(Item{Elem: i, Kind: Code128Item, Box: box, Quiet: image.Rect(x-quiet, y, x+symW+quiet, y+boxH),
		Data: c.Data, Module: mod, BarHeight: h, HRI: !c.HideText}, clear)
	pl.y = box.Max.Y
	return nil
}

func (pl *placer) qr(i int, q label.QR) error {
	v, err := qrVersion(q)
	if err != nil {
		return err
	}
	n := 17 + 4*v
	mod := min(q.ModuleSize(), pl.m.MaxQRModule)
	for mod > 1 && (n+8)*mod > pl.w {
		mod--
	}
	if n*mod > pl.w {
		return fmt.Errorf("qr of %d bytes is %d modules wide, the paper has %d dots: use less data", len(q.Data), n, pl.w)
	}
	if mod < q.ModuleSize() && mod < min(q.ModuleSize(), pl.m.MaxQRModule) {
		pl.warn("elements[%d]: QR code printed at %d dots per module (asked %d) to fit %d dots of paper", i, mod, q.ModuleSize(), pl.w)
	}
	symW := n * mod
	quiet := 4 * mod
	x := q.Align.Offset(symW, pl.w)
	if pl.lay.Profile.Language != label.ESCPOS && symW+2*quiet <= pl.w {
		x = min(max(x, quiet), pl.w-symW-quiet)
	}
	y, err := pl.reserve(pl.m.QROffset+symW, quiet)
	if err != nil {
		return err
	}
	top := y + pl.m.QROffset
	// The printer's own offset pushes the symbol down; the clearance
	// above is counted from the symbol, not the field origin.
	if pl.ink >= 0 && top < pl.ink+quiet {
		y += pl.ink + quiet - top
		top = y + pl.m.QROffset
	}
	box := image.Rect(x, top, x+symW, top+symW)
	pl.add(Item{Elem: i, Kind: QRItem, Box: box, Quiet: box.Inset(-quiet),
		Data: q.Data, Module: mod, EC: q.EC, Version: v}, quiet)
	pl.y = box.Max.Y
	return nil
}

// run is text prepared for one font: spelled in its repertoire.
type run struct {
	left, right string
	bitmap      bool
}

// has reports whether the printer's resident font prints r.
func (pl *placer) has(r rune) bool {
	if pl.lay.Profile.Language == label.ZPL && pl.page.IsUTF8() {
		return zplFontHas(r)
	}
	return pl.page.Has(r)
}

// spell writes s with the printer font's characters, "?" for the others;
// missing counts those, needBitmap reports one the outline fonts have.
func (pl *placer) spell(s string) (text string, missing int, needBitmap bool) {
	var b strings.Builder
	for _, r := range s {
		if sp, ok := codepage.Spell(r, pl.has); ok {
			b.WriteString(sp)
			continue
		}
		if outlineCovers(r) {
			needBitmap = true
		}
		missing++
		b.WriteByte('?')
	}
	return b.String(), missing, needBitmap
}

// spellOutline writes s with what the Go fonts draw, counting the rest.
func (pl *placer) spellOutline(s string) string {
	var b strings.Builder
	for _, r := range s {
		if sp, ok := codepage.Spell(r, outlineCovers); ok {
			b.WriteString(sp)
			continue
		}
		pl.lay.Unprintable++
		b.WriteByte('?')
	}
	return b.String()
}

func (pl *placer) prepare(t label.Text) run {
	l, lm, lb := pl.spell(t.Text)
	r, rm, rb := pl.spell(t.Right)
	if lb || rb {
		return run{left: pl.spellOutline(t.Text), right: pl.spellOutline(t.Right), bitmap: true}
	}
	pl.lay.Unprintable += lm + rm
	return run{left: l, right: r}
}

// cellH is the font's cell height at magnification size.
func (pl *placer) cellH(size int) int { return pl.m.CellH * size }

// measure is the width in dots that s inks at size.
func (pl *placer) measure(s string, size int, bold, bitmap bool) int {
	if s == "" {
		return 0
	}
	switch {
	case bitmap:
		return outlineWidth(s, pl.cellH(size), bold)
	case pl.m.CellW == 0:
		_, b := fonts()
		w := outlineAdvance(b, s, pl.cellH(size)) * font0Percent / 100
		if bold {
			w += pl.m.BoldExtra
		}
		return w
	}
	w := utf8.RuneCountInString(s) * pl.m.CellW * size
	if bold {
		w += pl.m.BoldExtra
	}
	return w
}

// maxLines is how many lines a text element may wrap onto before it
// is printed smaller.
const maxLines = 2

func (pl *placer) text(i int, t label.Text) error {
	rn := pl.prepare(t)
	want := min(t.TextSize(), pl.m.MaxSize)
	meas := func(s string, size int) int { return pl.measure(s, size, t.Bold, rn.bitmap) }
	gap := max(pl.m.CellW, 12)
	var (
		lines []string
		size  int
		right = rn.right
	)
	for size = want; size >= 1; size-- {
		first := pl.w
		if right != "" {
			first = pl.w - meas(right, size) - gap
		}
		if ls, ok := wrapWords(rn.left, first, pl.w, maxLines, func(s string) int { return meas(s, size) }); ok && first > 0 {
			lines = ls
			break
		}
	}
	if lines == nil {
		size = 1
		if right != "" && meas(right, 1) > pl.w/2 {
			right = pl.ellipsize(right, pl.w/2, func(s string) int { return meas(s, 1) }, false)
		}
		first := pl.w
		if right != "" {
			first = pl.w - meas(right, 1) - gap
		}
		var cut bool
		lines, cut = pl.breakLines(rn.left, first, pl.w, maxLines, func(s string) int { return meas(s, 1) })
		if cut || right != rn.right {
			pl.warn("elements[%d]: text %q shortened to fit %d dots of paper", i, t.Text, pl.w)
		}
	}
	ch := pl.cellH(size)
	inkH := ch
	if t.Underline && pl.lay.Profile.Language != label.ESCPOS {
		inkH += 4
	}
	for k, line := range lines {
		y, err := pl.reserve(inkH, 0)
		if err != nil {
			return err
		}
		r := ""
		if k == 0 {
			r = right
		}
		if rn.bitmap {
			pl.bitmapLine(i, t, line, r, size, y, meas)
		} else {
			fieldW := pl.w
			if r != "" {
				fieldW = pl.w - meas(r, size) - gap
			}
			lw := meas(line, size)
			x := t.Align.Offset(lw, fieldW)
			if line != "" {
				pl.add(Item{Elem: i, Kind: TextItem, Box: image.Rect(x, y, x+lw, y+inkH), Text: line, Size: size, CellH: ch,
					Bold: t.Bold, Underline: t.Underline, Just: t.Align, FieldX: 0, FieldW: fieldW}, 0)
			}
			if r != "" {
				rw := meas(r, size)
				edge := pl.rightEdge(size)
				pl.add(Item{Elem: i, Kind: TextItem, Box: image.Rect(edge-rw, y, edge, y+inkH), Text: r, Size: size, CellH: ch,
					Bold: t.Bold, Underline: t.Underline, Just: label.Right, FieldX: 0, FieldW: pl.w}, 0)
			}
		}
		pl.y = y + pl.m.LineAdvance(size)
	}
	return nil
}

// rightEdge is where right-justified text ends: the paper's edge, or on
// ESC/POS (which has no justification within a line) the last whole
// character column, reached by padding with spaces.
func (pl *placer) rightEdge(size int) int {
	if pl.lay.Profile.Language == label.ESCPOS {
		cw := pl.m.CellW * size
		return pl.w / cw * cw
	}
	return pl.w
}

// bitmapLine draws a line (and its right part) with the outline fonts.
func (pl *placer) bitmapLine(i int, t label.Text, line, right string, size, y int, meas func(string, int) int) {
	ch := pl.cellH(size)
	canvas := &Bitmap{W: pl.w, H: ch}
	canvas.Bits = make([]byte, canvas.Stride()*ch)
	draw := func(s string, x int) {
		if s == "" {
			return
		}
		w := meas(s, size)
		bm := renderOutline(s, min(w+2, pl.w-x), ch, t.Bold)
		for yy := 0; yy < bm.H; yy++ {
			for xx := 0; xx < bm.W; xx++ {
				if bm.At(xx, yy) && x+xx < pl.w {
					canvas.Bits[yy*canvas.Stride()+(x+xx)/8] |= 0x80 >> ((x + xx) % 8)
				}
			}
		}
		if t.Underline {
			// Under the glyphs, inside the cell.
			for xx := x; xx < min(x+w, pl.w); xx++ {
				for yy := ch - 2; yy < ch; yy++ {
					canvas.Bits[yy*canvas.Stride()+xx/8] |= 0x80 >> (xx % 8)
				}
			}
		}
	}
	fieldW := pl.w
	if right != "" {
		rw := meas(right, size)
		fieldW = pl.w - rw - max(pl.m.CellW, 12)
		draw(right, pl.w-rw)
	}
	draw(line, t.Align.Offset(meas(line, size), fieldW))
	bm, x0 := canvas.Crop()
	if bm == nil {
		return
	}
	pl.add(Item{Elem: i, Kind: BitmapItem, Box: image.Rect(x0, y, x0+bm.W, y+bm.H), Bitmap: bm, Size: size, CellH: ch, Just: label.Left}, 0)
}

// wrapWords breaks s at spaces into lines no wider than first (the first
// line) and rest (the others); ok is false when a word alone is too wide
// or more than n lines are needed.
func wrapWords(s string, first, rest, n int, width func(string) int) ([]string, bool) {
	words := strings.Fields(s)
	if len(words) == 0 {
		return []string{""}, first >= 0
	}
	var lines []string
	line := ""
	limit := first
	for _, w := range words {
		cand := w
		if line != "" {
			cand = line + " " + w
		}
		if width(cand) <= limit {
			line = cand
			continue
		}
		if line == "" || width(w) > rest {
			return nil, false
		}
		lines = append(lines, line)
		line, limit = w, rest
		if width(w) > limit {
			return nil, false
		}
	}
	lines = append(lines, line)
	return lines, len(lines) <= n
}

// breakLines wraps s at spaces, breaking words that are too long, into at
// most n lines; the last is cut with an ellipsis when s does not fit
// (cut reports it).
func (pl *placer) breakLines(s string, first, rest, n int, width func(string) int) (lines []string, cut bool) {
	words := strings.Fields(s)
	line := ""
	limit := max(first, 1)
	i := 0
	for i < len(words) {
		cand := words[i]
		if line != "" {
			cand = line + " " + words[i]
		}
		if width(cand) <= limit {
			line = cand
			i++
			continue
		}
		if line == "" {
			// A word wider than a line: as many characters as fit.
			rs := []rune(words[i])
			k := len(rs)
			for k > 1 && width(string(rs[:k])) > limit {
				k--
			}
			line = string(rs[:k])
			if k == len(rs) {
				i++
			} else {
				words[i] = string(rs[k:])
			}
		}
		if len(lines) == n-1 {
			break
		}
		lines = append(lines, line)
		line, limit = "", rest
	}
	if i < len(words) {
		cut = true
		line = pl.ellipsize(strings.TrimSpace(line+" "+strings.Join(words[i:], " ")), limit, width, true)
	}
	return append(lines, line), cut
}

// ellipsize shortens s, ending it with an ellipsis, until it fits limit;
// always says it is shortened even when s fits as it is.
func (pl *placer) ellipsize(s string, limit int, width func(string) int, always bool) string {
	ell, ok := codepage.Spell('…', pl.has)
	if !ok {
		ell = "..."
	}
	if !always && width(s) <= limit {
		return s
	}
	rs := []rune(s)
	for len(rs) > 0 && width(strings.TrimRightFunc(string(rs), unicode.IsSpace)+ell) > limit {
		rs = rs[:len(rs)-1]
	}
	return strings.TrimRightFunc(string(rs), unicode.IsSpace) + ell
}

// For is the preamble every encoder shares: the profile must be for lang
// (an empty language is taken as lang) and valid, the label valid; it
// returns the label placed for the printer.
func For(l label.Label, p label.Profile, lang label.Language) (*Layout, error) {
	if p.Language == "" {
		p.Language = lang
	}
	if p.Language != lang {
		return nil, fmt.Errorf("profile is for %s, not %s", p.Language, lang)
	}
	if err := p.Check(); err != nil {
		return nil, err
	}
	return Place(l, p)
}

// Lines groups a page's items into bands that share a top edge, in order:
// a text line and its right part, or one code.
func (pg Page) Lines() [][]Item {
	var out [][]Item
	for i := 0; i < len(pg.Items); {
		j := i + 1
		for j < len(pg.Items) && pg.Items[j].Kind == TextItem && pg.Items[i].Kind == TextItem &&
			pg.Items[j].Box.Min.Y == pg.Items[i].Box.Min.Y {
			j++
		}
		out = append(out, pg.Items[i:j])
		i = j
	}
	return out
}

// LineAdvance is how far the printer moves the paper after a line of text
// at magnification size (ESC/POS: the line spacing or the character
// height, whichever is more).
func (m Metrics) LineAdvance(size int) int {
	if m.Margin == 0 { // ESC/POS flows: the printer's own rule
		return max(m.Pitch, m.CellH*size)
	}
	return m.Pitch * size
}
