package fake

import (
	"fmt"
	"unicode/utf8"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode/decoder"
	"github.com/makiuchi-d/gozxing/qrcode/encoder"
)

// maxQRData is the most a QR symbol holds (version 40-L, bytes).
const maxQRData = 2953

// qrMatrix encodes data at error-correction level ecc ('L','M','Q','H')
// the way the printer's firmware would, returning the module matrix.
func qrMatrix(data string, ecc byte) ([][]bool, error) {
	if data == "" || len(data) > maxQRData {
		return nil, fmt.Errorf("qr: %d bytes of data", len(data))
	}
	level := map[byte]decoder.ErrorCorrectionLevel{
		'L': decoder.ErrorCorrectionLevel_L, 'M': decoder.ErrorCorrectionLevel_M,
		'Q': decoder.ErrorCorrectionLevel_Q, 'H': decoder.ErrorCorrectionLevel_H,
	}[ecc]
	if _, ok := map[byte]bool{'L': true, 'M': true, 'Q': true, 'H': true}[ecc]; !ok {
		level = decoder.ErrorCorrectionLevel_M
	}
	hints := map[gozxing.EncodeHintType]interface{}{}
	if !isASCII(data) && utf8.ValidString(data) {
		hints[gozxing.EncodeHintType_CHARACTER_SET] = "UTF-8"
	} else if !isASCII(data) {
		// Not UTF-8: the bytes stand for themselves, as Latin-1.
		rs := make([]rune, len(data))
		for i := 0; i < len(data); i++ {
			rs[i] = rune(data[i])
		}
		data = string(rs)
	}
	q, err := encoder.Encoder_encode(data, level, hints)
	if err != nil {
		return nil, fmt.Errorf("qr: %v", err)
	}
	m := q.GetMatrix()
	out := make([][]bool, m.GetHeight())
	for y := range out {
		out[y] = make([]bool, m.GetWidth())
		for x := range out[y] {
			out[y][x] = m.Get(x, y) == 1
		}
	}
	return out, nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// newQR lays out a QR op, or reports why the printer would print nothing.
func newQR(x, y int, data string, module int, ecc byte) (QR, error) {
	m, err := qrMatrix(data, ecc)
	if err != nil {
		return QR{}, err
	}
	if module < 1 {
		module = 1
	}
	return QR{X: x, Y: y, Data: data, Module: module, ECC: ecc, Size: len(m)}, nil
}
