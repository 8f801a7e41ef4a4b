package scanner_test

import (
	"fmt"
	"strings"

	"fieldkit/drivers/scanner"
)

// A keyboard-mode scanner types "A-1" and Enter: Shift, a, -, 1, Enter.
func ExampleDecoder() {
	var d scanner.Decoder
	keys := []struct {
		code  uint16
		value int32
	}{{42, 1}, {30, 1}, {30, 0}, {42, 0}, {12, 1}, {12, 0}, {2, 1}, {2, 0}, {28, 1}, {28, 0}}
	for _, k := range keys {
		if code, ok := d.Key(k.code, k.value); ok {
			fmt.Println(code)
		}
	}
	// Output: A-1
}

// A serial-mode scanner sends a code per line.
func ExampleLineReader() {
	var l scanner.LineReader
	for _, chunk := range []string{"demo:12:3f9a", "01bc\r\nA-1042\r", "\n"} {
		l.Feed([]byte(chunk), func(code string) { fmt.Println(strings.ToUpper(code[:1]) + code[1:]) })
	}
	// Output:
	// Demo:12:3f9a01bc
	// A-1042
}
