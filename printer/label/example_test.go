package label_test

import (
	"fmt"

	"fieldkit/printer/label"
)

func ExampleDecode() {
	l, err := label.Decode([]byte(`{"elements":[
		{"text":"A-1042","size":4,"bold":true,"align":"center"},
		{"qr":"https://example.com/r/1","size":6,"ec":"M"},
		{"code128":"A-1042"},
		{"cut":true}]}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, e := range l.Elements {
		fmt.Printf("%T\n", e)
	}
	_, err = label.Decode([]byte(`{"elements":[{"text":"A-1042","size":9}]}`))
	fmt.Println(err)
	// Output:
	// label.Text
	// label.QR
	// label.Code128
	// label.Cut
	// invalid label: elements[0]: text: size 9 out of range: want 1-8
}
