package fake_test

import (
	"fmt"

	"fieldkit/printer/fake"
)

func ExampleDecode() {
	zpl := []byte("^XA^FO20,20^A0N,40,30^FDOrder 1042^FS^FO20,80^BCN,60,N^FD1042^FS^XZ")
	labels, err := fake.Decode(fake.ZPL, zpl, 576)
	if err != nil {
		panic(err)
	}
	for _, op := range labels[0].Ops {
		switch op := op.(type) {
		case fake.Text:
			fmt.Printf("text %q at %d,%d\n", op.Text, op.X, op.Y)
		case fake.Barcode:
			fmt.Printf("code128 %q at %d,%d\n", op.Data, op.X, op.Y)
		}
	}
	// Output:
	// text "Order 1042" at 20,20
	// code128 "1042" at 20,80
}
