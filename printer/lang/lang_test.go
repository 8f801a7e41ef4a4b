package lang

import (
	"bytes"
	"testing"

	"fieldkit/printer/escpos"
	"fieldkit/printer/label"
	"fieldkit/printer/label/labeltest"
	"fieldkit/printer/tspl"
	"fieldkit/printer/zpl"
)

func TestDispatch(t *testing.T) {
	l := labeltest.Samples()[0].Label
	for _, tt := range []struct {
		lang   label.Language
		encode func(label.Label, label.Profile) ([]byte, error)
		query  []byte
	}{
		{label.ESCPOS, escpos.Encode, escpos.Query(1)},
		{label.ZPL, zpl.Encode, zpl.HostStatus},
		{label.TSPL, tspl.Encode, tspl.StatusQuery},
	} {
		p := label.Profile{Language: tt.lang}
		got, err := Encode(l, p)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := tt.encode(l, p)
		if !bytes.Equal(got, want) {
			t.Errorf("%s: Encode differs from the language package", tt.lang)
		}
		ps, err := Probes(tt.lang)
		if err != nil || !bytes.Equal(ps[0].Query, tt.query) {
			t.Errorf("%s: probes %v, %v", tt.lang, ps, err)
		}
	}
	if _, err := Encode(l, label.Profile{Language: "epl"}); err == nil {
		t.Error("epl encoded")
	}
	if _, err := Probes("epl"); err == nil {
		t.Error("epl probes")
	}
}
