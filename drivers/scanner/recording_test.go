package scanner

import (
	"encoding/binary"
	"flag"
	"os"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/scan-session.evdev")

// The recording is what `evtest` shows a USB HID scanner (Honeywell and
// Zebra handhelds in their default keyboard-wedge mode, US layout) send
// for each scan: per character an EV_MSC MSC_SCAN with the HID usage
// (page 7), the EV_KEY press and an EV_SYN, then the same for the
// release; Left Shift pressed and released around every upper-case
// letter or shifted symbol; Enter at the end; events 1-2 ms apart, scans
// about two seconds apart. It is written here from the HID usage table
// and the kernel's key codes, which are independent of the decoder's
// keymap, in the 64-bit struct input_event layout.
var recordedScans = []string{
	"demo:12:3f9a01bc",           // a pickup label's QR
	"A-1042",                     // its CODE128
	"MZXW6YTBOI2DKNZTGQ3DMNJXGQ", // a discreet label's QR (the buyer token)
	"demo:7:00ffa1b2",
}

// hidKey is a character's HID usage, Linux key code and whether Shift
// is held, for a US layout.
type hidKey struct {
	usage uint32
	code  uint16
	shift bool
}

func hidOf(c byte) hidKey {
	letters := "qwertyuiop" // key codes 16..25
	switch {
	case c >= 'a' && c <= 'z':
		return hidKey{0x04 + uint32(c-'a'), letterCode(c, letters), false}
	case c >= 'A' && c <= 'Z':
		k := hidOf(c - 'A' + 'a')
		k.shift = true
		return k
	case c >= '1' && c <= '9':
		return hidKey{0x1e + uint32(c-'1'), 2 + uint16(c-'1'), false}
	case c == '0':
		return hidKey{0x27, 11, false}
	case c == '-':
		return hidKey{0x2d, 12, false}
	case c == ':':
		return hidKey{0x33, 39, true}
	}
	panic("no key for " + string(c))
}

func letterCode(c byte, _ string) uint16 {
	rows := []struct {
		keys  string
		first uint16
	}{{"qwertyuiop", 16}, {"asdfghjkl", 30}, {"zxcvbnm", 44}}
	for _, r := range rows {
		for i := 0; i < len(r.keys); i++ {
			if r.keys[i] == c {
				return r.first + uint16(i)
			}
		}
	}
	panic("no key for " + string(c))
}

func writeRecording(t *testing.T, path string) {
	var out []byte
	sec, usec := int64(1764680000), int64(120000)
	ev := func(typ, code uint16, value int32) {
		var b [24]byte
		binary.LittleEndian.PutUint64(b[0:], uint64(sec))
		binary.LittleEndian.PutUint64(b[8:], uint64(usec))
		binary.LittleEndian.PutUint16(b[16:], typ)
		binary.LittleEndian.PutUint16(b[18:], code)
		binary.LittleEndian.PutUint32(b[20:], uint32(value))
		out = append(out, b[:]...)
	}
	tick := func(us int64) {
		usec += us
		sec += usec / 1e6
		usec %= 1e6
	}
	key := func(usage uint32, code uint16, value int32) {
		ev(evMsc, 4, int32(0x70000|usage)) // MSC_SCAN
		ev(evKey, code, value)
		ev(evSyn, 0, 0)
		tick(1100)
	}
	for _, s := range recordedScans {
		for i := 0; i < len(s); i++ {
			k := hidOf(s[i])
			if k.shift {
				key(0xe1, keyLeftShift, 1)
			}
			key(k.usage, k.code, 1)
			key(k.usage, k.code, 0)
			if k.shift {
				key(0xe1, keyLeftShift, 0)
			}
		}
		key(0x28, keyEnter, 1)
		key(0x28, keyEnter, 0)
		tick(2_000_000)
	}
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

// nativeLayout converts the 64-bit recording to this platform's
// struct input_event (16 bytes on 32-bit ARM).
func nativeLayout(b []byte) []byte {
	if EventSize == 24 {
		return b
	}
	var out []byte
	for i := 0; i+24 <= len(b); i += 24 {
		var e [16]byte
		binary.LittleEndian.PutUint32(e[0:], uint32(binary.LittleEndian.Uint64(b[i:])))
		binary.LittleEndian.PutUint32(e[4:], uint32(binary.LittleEndian.Uint64(b[i+8:])))
		copy(e[8:], b[i+16:i+24])
		out = append(out, e[:]...)
	}
	return out
}

func readRecording(t *testing.T) []byte {
	t.Helper()
	const path = "testdata/scan-session.evdev"
	if *update {
		writeRecording(t, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return nativeLayout(b)
}
