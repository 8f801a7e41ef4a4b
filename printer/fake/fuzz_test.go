package fake

import (
	"fmt"
	"reflect"
	"testing"
)

// feedAll decodes data fed in pieces of size step (0: whole), returning
// what came out: queries, finished labels and the flushed rest.
func feedAll(t *testing.T, lang string, data []byte, step int) ([]string, []*Label) {
	d, err := NewDecoder(lang, 384)
	if err != nil {
		t.Fatal(err)
	}
	var qs []string
	var labels []*Label
	take := func(evs []Event) {
		for _, ev := range evs {
			switch ev.Kind {
			case EventQuery:
				qs = append(qs, ev.Query)
			case EventLabel:
				labels = append(labels, ev.Label)
			}
		}
	}
	if step <= 0 {
		take(d.Feed(data))
	} else {
		for i := 0; i < len(data); i += step {
			take(d.Feed(data[i:min(i+step, len(data))]))
		}
	}
	if l := d.Flush(); l != nil {
		labels = append(labels, l)
	}
	return qs, labels
}

// fuzzDecoder checks that no input panics, that splitting the stream
// anywhere changes nothing, that label byte counts add up, and that every
// label renders.
func fuzzDecoder(t *testing.T, lang string, data []byte, step uint8) {
	qs, labels := feedAll(t, lang, data, 0)
	qs2, labels2 := feedAll(t, lang, data, int(step%17)+1)
	if !reflect.DeepEqual(qs, qs2) {
		t.Fatalf("queries differ when split: %q vs %q", qs, qs2)
	}
	if !reflect.DeepEqual(labels, labels2) {
		t.Fatalf("labels differ when split every %d bytes:\n%s\nvs\n%s", step%17+1, dump(labels), dump(labels2))
	}
	total := 0
	for _, l := range labels {
		total += l.Bytes
		if l.Bytes < 0 {
			t.Fatalf("negative byte count")
		}
		renderLabel(l, 384)
	}
	if total > len(data) {
		t.Fatalf("labels count %d bytes of %d", total, len(data))
	}
}

func dump(ls []*Label) string {
	s := ""
	for _, l := range ls {
		s += fmt.Sprintf("%+v\n", *l)
	}
	return s
}

func FuzzESCPOS(f *testing.F) {
	f.Add(sampleESCPOS(), uint8(3))
	f.Add(queries[ESCPOS], uint8(1))
	f.Add([]byte{gs, 'v', '0', 0, 2, 0, 3, 0, 0xFF, 0x81, 0xFF, 0x81, 0xFF, 0x81, lf, gs, 'V', 0}, uint8(5))
	f.Add([]byte{esc, '*', 33, 2, 0, 1, 2, 3, 4, 5, 6, esc, 'i'}, uint8(2))
	f.Fuzz(func(t *testing.T, data []byte, step uint8) { fuzzDecoder(t, ESCPOS, data, step) })
}

func FuzzZPL(f *testing.F) {
	f.Add(sampleZPL(), uint8(4))
	f.Add([]byte("~HS^XA^FO10,10^BCN,50,Y^FD>;123456>6AB^FS^XZ"), uint8(1))
	f.Add([]byte("^XA^FO1,1^FB100,2,0,R^FH^FDa_41b\\&c^FS^GB10,10,5^FS^XZ"), uint8(7))
	f.Add([]byte("^XA^CF0,24^FO8,20^GFA,12,12,2,FF80,:1C,K0F,^FS^FO0,60^BQN,2,3^FDMA,x^FS^XZ"), uint8(3))
	f.Fuzz(func(t *testing.T, data []byte, step uint8) { fuzzDecoder(t, ZPL, data, step) })
}

func FuzzTSPL(f *testing.F) {
	f.Add(sampleTSPL(), uint8(5))
	f.Add([]byte("\x1b!?SIZE 2,1\nCLS\nBITMAP 0,0,2,2,0,\x00\xff\x0f\xf0\nPRINT 2\n"), uint8(2))
	f.Add([]byte("TEXT 1,1,\"1\",0,1,1,3,\"a\\[\"]b\"\nBOX 0,0,10,10,2\nPRINT 1\n"), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, step uint8) { fuzzDecoder(t, TSPL, data, step) })
}
