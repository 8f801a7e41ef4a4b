package scanner

// Linux input event types and key codes (linux/input-event-codes.h) a
// keyboard-mode scanner sends. A scanner is a HID keyboard: for every
// character it presses and releases the key of a US layout, holding
// Shift around upper-case letters and symbols, and ends a code with
// Enter.
const (
	evSyn = 0x00
	evKey = 0x01
	evMsc = 0x04

	keyEnter      = 28
	keyLeftShift  = 42
	keyRightShift = 54
	keyCapsLock   = 58
	keyKPEnter    = 96
)

// keymap maps a key code to its character without and with Shift.
var keymap = map[uint16][2]byte{
	2: {'1', '!'}, 3: {'2', '@'}, 4: {'3', '#'}, 5: {'4', '$'}, 6: {'5', '%'},
	7: {'6', '^'}, 8: {'7', '&'}, 9: {'8', '*'}, 10: {'9', '('}, 11: {'0', ')'},
	12: {'-', '_'}, 13: {'=', '+'},
	16: {'q', 'Q'}, 17: {'w', 'W'}, 18: {'e', 'E'}, 19: {'r', 'R'}, 20: {'t', 'T'},
	21: {'y', 'Y'}, 22: {'u', 'U'}, 23: {'i', 'I'}, 24: {'o', 'O'}, 25: {'p', 'P'},
	26: {'[', '{'}, 27: {']', '}'},
	30: {'a', 'A'}, 31: {'s', 'S'}, 32: {'d', 'D'}, 33: {'f', 'F'}, 34: {'g', 'G'},
	35: {'h', 'H'}, 36: {'j', 'J'}, 37: {'k', 'K'}, 38: {'l', 'L'},
	39: {';', ':'}, 40: {'\'', '"'}, 41: {'`', '~'}, 43: {'\\', '|'},
	44: {'z', 'Z'}, 45: {'x', 'X'}, 46: {'c', 'C'}, 47: {'v', 'V'}, 48: {'b', 'B'},
	49: {'n', 'N'}, 50: {'m', 'M'},
	51: {',', '<'}, 52: {'.', '>'}, 53: {'/', '?'}, 57: {' ', ' '},
	// The keypad, which some scanners use for digits.
	55: {'*', '*'}, 71: {'7', '7'}, 72: {'8', '8'}, 73: {'9', '9'}, 74: {'-', '-'},
	75: {'4', '4'}, 76: {'5', '5'}, 77: {'6', '6'}, 78: {'+', '+'},
	79: {'1', '1'}, 80: {'2', '2'}, 81: {'3', '3'}, 82: {'0', '0'}, 83: {'.', '.'},
	98: {'/', '/'},
}

// MaxCode is the longest code kept; longer input (a key held down, a
// scanner misconfigured to send a whole page) is dropped at its Enter.
const MaxCode = 256

// Decoder turns key events into codes. The zero value is ready.
type Decoder struct {
	shift    uint8 // bit 0: left Shift held, bit 1: right Shift held
	caps     bool
	buf      []byte
	overflow bool
	// Dropped counts codes thrown away for being longer than MaxCode or
	// holding keys that have no character.
	Dropped int
}

// Key takes one EV_KEY event (value 1 press, 2 auto-repeat, 0 release)
// and returns a code when it was Enter ending a non-empty one.
func (d *Decoder) Key(code uint16, value int32) (string, bool) {
	switch code {
	case keyLeftShift, keyRightShift:
		bit := uint8(1)
		if code == keyRightShift {
			bit = 2
		}
		if value == 0 {
			d.shift &^= bit
		} else {
			d.shift |= bit
		}
		return "", false
	case keyCapsLock:
		if value == 1 {
			d.caps = !d.caps
		}
		return "", false
	}
	if value == 0 {
		return "", false
	}
	if code == keyEnter || code == keyKPEnter {
		if value != 1 {
			return "", false
		}
		s, bad := string(d.buf), d.overflow
		d.buf, d.overflow = d.buf[:0], false
		if bad {
			d.Dropped++
			return "", false
		}
		return s, s != ""
	}
	c, ok := keymap[code]
	if !ok {
		// A modifier or function key: no character. Ctrl and Alt are
		// not part of a barcode.
		return "", false
	}
	ch := c[0]
	up := d.shift != 0
	if d.caps && ch >= 'a' && ch <= 'z' {
		up = !up
	}
	if up {
		ch = c[1]
	}
	if len(d.buf) >= MaxCode {
		d.overflow = true
		return "", false
	}
	d.buf = append(d.buf, ch)
	return "", false
}
