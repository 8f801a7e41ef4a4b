package fake

import (
	"fmt"
	"math/rand/v2"
)

// State is the scripted condition of the fake printer.
type State int

const (
	// Ready prints and answers "all fine".
	Ready State = iota
	// PaperLow prints and reports the near-end sensor (ESC/POS DLE EOT
	// 4 bits 2-3). ZPL ~HS and TSPL ESC !? have no near-end flag, so
	// they answer as Ready.
	PaperLow
	// PaperOut holds finished labels and reports paper end until the
	// state changes; the input buffer fills and then reading stops.
	PaperOut
	// CoverOpen holds labels like PaperOut and reports the open cover
	// (ESC/POS DLE EOT 2 bit 2, ZPL head-up flag, TSPL head opened).
	CoverOpen
	// Silent prints but never answers a status query.
	Silent
	// Garbage prints but answers every status query with random bytes
	// that fail the language's framing: for ESC/POS 2-6 bytes whose
	// first has fixed bits 0 and 7 set, for ZPL bytes with no STX/ETX,
	// for TSPL 2-6 bytes where one is expected.
	Garbage
)

var stateNames = [...]string{"ready", "paper-low", "paper-out", "cover-open", "silent", "garbage"}

func (s State) String() string {
	if s >= 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// ParseState is the inverse of State.String.
func ParseState(s string) (State, error) {
	for i, n := range stateNames {
		if n == s {
			return State(i), nil
		}
	}
	return 0, fmt.Errorf("fake printer: unknown state %q (want one of %v)", s, stateNames)
}

// printing is whether labels leave the printer in this state.
func (s State) printing() bool { return s != PaperOut && s != CoverOpen }

// ESC/POS status bits (Epson DLE EOT): bit 1 and bit 4 are always 1, bits
// 0 and 7 always 0.
const (
	escposFixed     = 0x12
	escposOffline   = 0x08 // n=1
	escposCoverOpen = 0x04 // n=2
	escposPaperStop = 0x20 // n=2: printing stopped by paper end
	escposNearEnd   = 0x0C // n=4: near-end sensor
	escposPaperEnd  = 0x60 // n=4: end sensor
)

// TSPL ESC !? status bits.
const (
	tsplHeadOpen = 0x01
	tsplPaperOut = 0x04
)

// statusInfo is what a ~HS reply reports beyond the state.
type statusInfo struct {
	pending    int  // labels waiting in the printer
	bufferFull bool // reading has stopped
	partial    bool // a label is half received
}

// reply is the answer to query ev in state s, nil for none.
func reply(lang string, ev Event, s State, info statusInfo, rng *rand.Rand) []byte {
	switch s {
	case Silent:
		return nil
	case Garbage:
		return garbage(lang, rng)
	}
	switch lang {
	case ESCPOS:
		b := byte(escposFixed)
		switch ev.N {
		case 1:
			if !s.printing() {
				b |= escposOffline
			}
		case 2:
			if s == CoverOpen {
				b |= escposCoverOpen
			}
			if s == PaperOut {
				b |= escposPaperStop
			}
		case 4:
			if s == PaperLow {
				b |= escposNearEnd
			}
			if s == PaperOut {
				b |= escposNearEnd | escposPaperEnd
			}
		}
		return []byte{b}
	case ZPL:
		return hostStatus(s, info)
	case TSPL:
		switch s {
		case PaperOut:
			return []byte{tsplPaperOut}
		case CoverOpen:
			return []byte{tsplHeadOpen}
		}
		return []byte{0}
	}
	return nil
}

// hostStatus is the three-string ~HS reply, each string framed by STX and
// ETX and followed by CR LF (Zebra ZPL II, ~HS).
func hostStatus(s State, info statusInfo) []byte {
	flag := func(b bool) int {
		if b {
			return 1
		}
		return 0
	}
	// aaa comm settings, b paper out, c pause, dddd label length,
	// eee formats in buffer, f buffer full, g diagnostic mode, h partial
	// format, iii unused, j corrupt RAM, k under temp, l over temp.
	s1 := fmt.Sprintf("030,%d,%d,1200,%03d,%d,0,%d,000,0,0,0",
		flag(s == PaperOut), flag(!s.printing()), min(info.pending, 999), flag(info.bufferFull), flag(info.partial))
	// mmm function settings, n unused, o head up, p ribbon out,
	// q thermal transfer, r print mode, s width mode, t label waiting,
	// uuuuuuuu labels left in batch, v always 1, www graphics stored.
	s2 := fmt.Sprintf("001,0,%d,0,0,2,6,0,00000000,1,000", flag(s == CoverOpen))
	// xxxx password, y static RAM installed.
	s3 := "1234,0"
	var out []byte
	for _, line := range []string{s1, s2, s3} {
		out = append(out, stx)
		out = append(out, line...)
		out = append(out, etx, cr, lf)
	}
	return out
}

func garbage(lang string, rng *rand.Rand) []byte {
	out := make([]byte, 2+rng.IntN(5))
	for i := range out {
		out[i] = byte(rng.UintN(256))
		if out[i] == stx || out[i] == etx {
			out[i] ^= 0x40
		}
	}
	if lang == ESCPOS {
		out[0] |= 0x81
	}
	return out
}
