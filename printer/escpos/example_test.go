package escpos_test

import (
	"fmt"

	"fieldkit/printer/escpos"
	"fieldkit/printer/label"
)

func ExampleEncode() {
	l := label.Label{Elements: []label.Element{
		label.Text{Text: "Grüße 5 €", Bold: true},
		label.Cut{},
	}}
	b, err := escpos.Encode(l, label.Profile{Language: label.ESCPOS, CodePage: "cp858"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("% x\n", b)
	// Output:
	// 1b 40 1b 74 13 1b 45 01 47 72 81 e1 65 20 35 20 d5 0a 1d 56 41 00
}
