package label

import "fmt"

// qrBytes[v-1][ec] is how many bytes of byte-mode data a model 2 QR
// symbol of version v holds at each level (index order L, M, Q, H), from
// the capacity table of ISO/IEC 18004. Versions up to 25 cover MaxQR at
// every level.
var qrBytes = [...][4]int{
	{17, 14, 11, 7}, {32, 26, 20, 14}, {53, 42, 32, 24}, {78, 62, 46, 34},
	{106, 84, 60, 44}, {134, 106, 74, 58}, {154, 122, 86, 64}, {192, 152, 108, 84},
	{230, 180, 130, 98}, {271, 213, 151, 119}, {321, 251, 177, 137}, {367, 287, 203, 155},
	{425, 331, 241, 177}, {458, 362, 258, 194}, {520, 412, 292, 220}, {586, 450, 322, 250},
	{644, 504, 364, 280}, {718, 560, 394, 310}, {792, 624, 442, 338}, {858, 666, 482, 382},
	{929, 711, 509, 403}, {1003, 779, 565, 439}, {1091, 857, 611, 461}, {1171, 911, 661, 511},
	{1273, 997, 715, 535},
}

func (e ECLevel) index() int {
	switch e {
	case ECL:
		return 0
	case ECQ:
		return 2
	case ECH:
		return 3
	}
	return 1
}

// Version returns the smallest QR version that holds the data in byte
// mode at the element's level (what a printer picks when the version is
// left automatic, as all three encoders do).
func (q QR) Version() (int, error) {
	for v, caps := range qrBytes {
		if len(q.Data) <= caps[q.EC.index()] {
			return v + 1, nil
		}
	}
	return 0, fmt.Errorf("qr of %d bytes does not fit a version %d symbol at level %v", len(q.Data), len(qrBytes), q.EC)
}

// WidthDots returns the printed width of the symbol without its quiet
// zone: (17 + 4·version) modules of ModuleSize dots.
func (q QR) WidthDots() (int, error) {
	v, err := q.Version()
	if err != nil {
		return 0, err
	}
	return (17 + 4*v) * q.ModuleSize(), nil
}

// Modules returns the barcode's width in modules when encoded in code set
// B: start (11), 11 per character, check (11), stop (13).
func (c Code128) Modules() int { return 11*(len(c.Data)+2) + 13 }

// Code128 module widths the languages accept (ESC/POS GS w takes 2-6; ZPL
// ^BY and TSPL narrow bars go wider, but thermal heads blur 1-dot bars).
const (
	MinBarModule = 2
	MaxBarModule = 4
)

// BarModule returns the widest module (in dots) at which the barcode and
// its quiet zones (10 modules each side) fit in widthDots, or an error
// naming how wide it would be at the narrowest.
func (c Code128) BarModule(widthDots int) (int, error) {
	need := c.Modules() + 20
	for m := MaxBarModule; m >= MinBarModule; m-- {
		if need*m <= widthDots {
			return m, nil
		}
	}
	return 0, fmt.Errorf("code128 %q needs %d dots at %d dots per bar, the paper has %d: shorten the data", c.Data, need*MinBarModule, MinBarModule, widthDots)
}

// CheckFits returns an error if the QR code is wider than widthDots.
func (q QR) CheckFits(widthDots int) error {
	w, err := q.WidthDots()
	if err != nil {
		return err
	}
	if w > widthDots {
		return fmt.Errorf("qr of %d bytes at size %d is %d dots wide, the paper has %d: use a smaller size or less data", len(q.Data), q.ModuleSize(), w, widthDots)
	}
	return nil
}

// Offset returns the left edge that places an item itemDots wide on a
// line widthDots wide with alignment a (for languages that position by
// coordinates: ZPL, TSPL).
func (a Align) Offset(itemDots, widthDots int) int {
	free := widthDots - itemDots
	if free <= 0 {
		return 0
	}
	switch a {
	case Center:
		return free / 2
	case Right:
		return free
	}
	return 0
}
