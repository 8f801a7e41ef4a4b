package fake

import (
	"bytes"
	"fmt"
)

// Reference streams in the three languages: the pickup label the encoders
// produce, written by hand from the manuals so that the fake is tested
// against the languages, not against our own encoders.

const (
	sampleURL  = "https://pickup.example.com/r/7Q2K9X4M8P3T5V1"
	sampleCode = "ORD-20240517-0042"
)

func sampleESCPOS() []byte {
	var b bytes.Buffer
	b.Write([]byte{esc, '@', esc, 't', 16})
	b.Write([]byte{esc, 'a', 1, gs, '!', 0x33, esc, 'E', 1})
	b.WriteString("#1042\n")
	b.Write([]byte{gs, '!', 0x00, esc, 'E', 0, esc, 'a', 0})
	b.WriteString("Ana Mart\xednez\n") // í in CP1252
	b.WriteString("2x Tee black M\n1x Cap\n1x Sticker pack\n")
	b.Write([]byte{esc, 'E', 1})
	b.WriteString("TOTAL 54.90 EUR\n")
	b.Write([]byte{esc, 'E', 0, esc, '-', 1})
	b.WriteString("underlined\n")
	b.Write([]byte{esc, '-', 0, esc, 'a', 1})
	// QR: model 2, module 6, ECC M, store, print.
	qr := func(fn byte, args ...byte) {
		p := append([]byte{49, fn}, args...)
		b.Write([]byte{gs, '(', 'k', byte(len(p)), byte(len(p) >> 8)})
		b.Write(p)
	}
	qr(65, 50, 0)
	qr(67, 6)
	qr(69, 49)
	qr(80, append([]byte{48}, sampleURL...)...)
	qr(81, 48)
	b.Write([]byte{esc, 'd', 1})
	// CODE128: height 80, module 2, HRI below, set B.
	data := append([]byte("{B"), sampleCode...)
	b.Write([]byte{gs, 'h', 80, gs, 'w', 2, gs, 'H', 2, gs, 'k', 73, byte(len(data))})
	b.Write(data)
	b.Write([]byte{esc, 'd', 3, gs, 'V', 66, 0})
	return b.Bytes()
}

func sampleZPL() []byte {
	return []byte("^XA^CI28^PW576^LL900\n" +
		"^FO0,20^A0N,80,60^FB576,1,0,C^FD#1042^FS\n" +
		"^FO20,120^A0N,30,20^FDAna Mart\xc3\xadnez^FS\n" +
		"^FO20,160^A0N,24,16^FB536,3,4,L^FD2x Tee black M\\&1x Cap\\&1x Sticker pack^FS\n" +
		"^FO20,260^A0N,30,20^FH^FDTOTAL 54.90 _E2_82_AC^FS\n" +
		"^FO150,310^BQN,2,6^FDMA," + sampleURL + "^FS\n" +
		"^FO60,620^BY2^BCN,80,Y,N,N^FD" + sampleCode + "^FS\n" +
		"^PQ1^XZ\n")
}

func sampleTSPL() []byte {
	return []byte("SIZE 72 mm,110 mm\r\nGAP 3 mm,0 mm\r\nCODEPAGE UTF-8\r\nDIRECTION 1\r\nCLS\r\n" +
		"TEXT 288,20,\"4\",0,2,2,2,\"#1042\"\r\n" +
		"TEXT 20,100,\"3\",0,1,1,\"Ana Mart\xc3\xadnez\"\r\n" +
		"TEXT 20,140,\"2\",0,1,1,\"2x Tee \\[\"]black\\[\"] M\"\r\n" +
		"TEXT 20,170,\"2\",0,1,1,\"1x Cap\"\r\n" +
		"BAR 20,200,536,3\r\n" +
		"TEXT 20,215,\"3\",0,1,1,\"TOTAL 54.90 EUR\"\r\n" +
		"QRCODE 150,260,M,6,A,0,M2,S7,\"" + sampleURL + "\"\r\n" +
		"BARCODE 60,560,\"128\",80,2,0,2,4,\"" + sampleCode + "\"\r\n" +
		"PRINT 1,1\r\nCUT\r\n")
}

func sample(lang string) []byte {
	switch lang {
	case ESCPOS:
		return sampleESCPOS()
	case ZPL:
		return sampleZPL()
	case TSPL:
		return sampleTSPL()
	}
	panic(fmt.Sprintf("no sample for %q", lang))
}
