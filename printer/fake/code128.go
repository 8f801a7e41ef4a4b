package fake

import (
	"errors"
	"strings"
)

// code128Widths are the bar/space widths of CODE128 symbol values 0-106
// (103-105 start A/B/C, 106 stop), from the symbology standard.
var code128Widths = [...]string{
	"212222", "222122", "222221", "121223", "121322", "131222", "122213", "122312", "132212", "221213",
	"221312", "231212", "112232", "122132", "122231", "113222", "123122", "123221", "223211", "221132",
	"221231", "213212", "223112", "312131", "311222", "321122", "321221", "312212", "322112", "322211",
	"212123", "212321", "232121", "111323", "131123", "131321", "112313", "132113", "132311", "211313",
	"231113", "231311", "112133", "112331", "132131", "113123", "113321", "133121", "313121", "211331",
	"231131", "213113", "213311", "213131", "311123", "311321", "331121", "312113", "312311", "332111",
	"314111", "221411", "431111", "111224", "111422", "121124", "121421", "141122", "141221", "112214",
	"112412", "122114", "122411", "142112", "142211", "241211", "221114", "413111", "241112", "134111",
	"111242", "121142", "121241", "114212", "124112", "124211", "411212", "421112", "421211", "212141",
	"214121", "412121", "111143", "111341", "131141", "114113", "114311", "411113", "411311", "113141",
	"114131", "311141", "411131", "211412", "211214", "211232", "2331112",
}

// Symbol values with a meaning of their own.
const (
	c128FNC3   = 96
	c128FNC2   = 97
	c128Shift  = 98
	c128CodeC  = 99
	c128CodeB  = 100 // FNC4 in set B
	c128CodeA  = 101 // FNC4 in set A
	c128FNC1   = 102
	c128StartA = 103
	c128StartB = 104
	c128StartC = 105
	c128Stop   = 106
)

var errCode128 = errors.New("code128: data not encodable")

// code128Modules returns the symbol as module colours (true = bar),
// computing the checksum and appending the stop pattern.
func code128Modules(codes []int) []bool {
	if len(codes) == 0 {
		return nil
	}
	sum := codes[0]
	for i, c := range codes[1:] {
		sum += c * (i + 1)
	}
	all := append(append([]int(nil), codes...), sum%103, c128Stop)
	var out []bool
	for _, c := range all {
		if c < 0 || c >= len(code128Widths) {
			continue
		}
		bar := true
		for _, w := range code128Widths[c] {
			for k := 0; k < int(w-'0'); k++ {
				out = append(out, bar)
			}
			bar = !bar
		}
	}
	return out
}

type c128set int

const (
	setNone c128set = iota
	setA
	setB
	setC
)

// code128Auto encodes printable ASCII (and controls through set A),
// using set C for runs of four or more digits. Bytes above 127 cannot be
// encoded without FNC4 and are refused.
func code128Auto(data []byte) ([]int, error) {
	if len(data) == 0 {
		return nil, errCode128
	}
	var codes []int
	set := setNone
	switchTo := func(s c128set) {
		if set == s {
			return
		}
		if set == setNone {
			codes = append(codes, map[c128set]int{setA: c128StartA, setB: c128StartB, setC: c128StartC}[s])
		} else {
			codes = append(codes, map[c128set]int{setA: c128CodeA, setB: c128CodeB, setC: c128CodeC}[s])
		}
		set = s
	}
	for i := 0; i < len(data); {
		run := 0
		for i+run < len(data) && isDigit(data[i+run]) {
			run++
		}
		if run >= 4 || (run >= 2 && run == len(data)-i && set == setC) || (run == len(data) && run%2 == 0) {
			switchTo(setC)
			for run >= 2 {
				codes = append(codes, int(data[i]-'0')*10+int(data[i+1]-'0'))
				i += 2
				run -= 2
			}
			continue
		}
		c := data[i]
		switch {
		case c >= 128:
			return nil, errCode128
		case c < 32:
			switchTo(setA)
			codes = append(codes, int(c)+64)
		default:
			if set != setA || c >= 96 {
				switchTo(setB)
			}
			codes = append(codes, int(c)-32)
		}
		i++
	}
	return codes, nil
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }

// codeInSet is the symbol value of byte c in set A or B, or -1.
func codeInSet(set c128set, c byte) int {
	switch set {
	case setA:
		if c < 32 {
			return int(c) + 64
		}
		if c < 96 {
			return int(c) - 32
		}
	case setB:
		if c >= 32 && c < 128 {
			return int(c) - 32
		}
	}
	return -1
}

// code128ESCPOS encodes GS k 73 data: it must open with {A, {B or {C; in
// set C each byte is a value 0-99 (two digits), and {S, {1..{4, {{ are
// shift, FNC1..4 and a literal brace. It returns the values and the
// human-readable text.
func code128ESCPOS(data []byte) ([]int, string, error) {
	if len(data) < 2 || data[0] != '{' {
		return nil, "", errCode128
	}
	var codes []int
	var text strings.Builder
	set := setNone
	for i := 0; i < len(data); i++ {
		c := data[i]
		if c == '{' && i+1 < len(data) && data[i+1] != '{' {
			i++
			switch sel := data[i]; sel {
			case 'A', 'B', 'C':
				s := map[byte]c128set{'A': setA, 'B': setB, 'C': setC}[sel]
				if set == setNone {
					codes = append(codes, map[c128set]int{setA: c128StartA, setB: c128StartB, setC: c128StartC}[s])
				} else if s != set {
					codes = append(codes, map[c128set]int{setA: c128CodeA, setB: c128CodeB, setC: c128CodeC}[s])
				}
				set = s
			case 'S':
				if set != setA && set != setB || i+1 >= len(data) {
					return nil, "", errCode128
				}
				other := setA
				if set == setA {
					other = setB
				}
				i++
				v := codeInSet(other, data[i])
				if v < 0 {
					return nil, "", errCode128
				}
				codes = append(codes, c128Shift, v)
				text.WriteByte(data[i])
			case '1':
				codes = append(codes, c128FNC1)
			case '2':
				codes = append(codes, c128FNC2)
			case '3':
				codes = append(codes, c128FNC3)
			case '4':
				if set == setA {
					codes = append(codes, c128CodeA)
				} else {
					codes = append(codes, c128CodeB)
				}
			default:
				return nil, "", errCode128
			}
			if set == setNone {
				return nil, "", errCode128
			}
			continue
		}
		if c == '{' {
			i++ // "{{" is one literal brace
		}
		switch set {
		case setC:
			if c > 99 {
				return nil, "", errCode128
			}
			codes = append(codes, int(c))
			text.WriteByte('0' + c/10)
			text.WriteByte('0' + c%10)
		case setA, setB:
			v := codeInSet(set, c)
			if v < 0 {
				return nil, "", errCode128
			}
			codes = append(codes, v)
			text.WriteByte(c)
		default:
			return nil, "", errCode128
		}
	}
	if len(codes) < 2 {
		return nil, "", errCode128
	}
	return codes, text.String(), nil
}

// code128ZPL encodes ^BC field data. Data opening with an invocation code
// (>9 start A, >: start B, >; start C) is taken literally, with >5/>6/>7
// switching to C/B/A, >8 FNC1 and >< a literal '>'; in set C digits go in
// pairs. Other data is encoded automatically.
func code128ZPL(data []byte) ([]int, string, error) {
	if len(data) < 2 || data[0] != '>' || (data[1] != '9' && data[1] != ':' && data[1] != ';') {
		codes, err := code128Auto(data)
		return codes, string(data), err
	}
	var codes []int
	var text strings.Builder
	set := map[byte]c128set{'9': setA, ':': setB, ';': setC}[data[1]]
	codes = append(codes, map[c128set]int{setA: c128StartA, setB: c128StartB, setC: c128StartC}[set])
	for i := 2; i < len(data); i++ {
		c := data[i]
		if c == '>' && i+1 < len(data) {
			i++
			switch data[i] {
			case '5':
				if set != setC {
					codes = append(codes, c128CodeC)
				}
				set = setC
				continue
			case '6':
				if set != setB {
					codes = append(codes, c128CodeB)
				}
				set = setB
				continue
			case '7':
				if set != setA {
					codes = append(codes, c128CodeA)
				}
				set = setA
				continue
			case '8':
				codes = append(codes, c128FNC1)
				continue
			case '<':
				c = '>'
			default:
				return nil, "", errCode128
			}
		}
		if set == setC {
			if i+1 >= len(data) || !isDigit(c) || !isDigit(data[i+1]) {
				return nil, "", errCode128
			}
			codes = append(codes, int(c-'0')*10+int(data[i+1]-'0'))
			text.WriteByte(c)
			text.WriteByte(data[i+1])
			i++
			continue
		}
		v := codeInSet(set, c)
		if v < 0 {
			return nil, "", errCode128
		}
		codes = append(codes, v)
		text.WriteByte(c)
	}
	if len(codes) < 2 {
		return nil, "", errCode128
	}
	return codes, text.String(), nil
}
