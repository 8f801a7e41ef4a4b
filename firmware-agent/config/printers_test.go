package config_test

import (
	"strings"
	"testing"
	"time"

	"fieldkit/firmware-agent/config"
)

func TestPrintersInAgentConfig(t *testing.T) {
	good := `
box: b1
printers:
  counter:
    language: escpos
    transport: serial
    path: /dev/fieldkit/printer-counter
    baud: 115200
    width_dots: 576
    code_page: cp858
    status_timeout: 250ms
  shelf:
    language: zpl
    transport: tcp
    address: 192.168.1.40
  demo:
    language: tspl
    transport: fake
    media: {width_mm: 50, height_mm: 30, gap_mm: 2}
  roll:
    language: zpl
    transport: fake
    media: continuous
`
	c, err := config.Parse("agent.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if p := c.Printers["counter"]; p.Baud != 115200 || p.StatusTimeout != 250*time.Millisecond || p.WidthDots != 576 {
		t.Fatalf("counter = %+v", p)
	}
	if m := c.Printers["demo"].Media; m.HeightMM != 30 || m.GapMM != 2 || c.Printers["demo"].PageDots() != 240 || c.Printers["demo"].GapDotsOf() != 16 {
		t.Fatalf("demo media = %+v", m)
	}
	if r := c.Printers["roll"]; !r.Media.Continuous || r.DieCut() {
		t.Fatalf("roll media = %+v", r.Media)
	}

	for _, tc := range []struct{ yaml, want string }{
		{"printers:\n  counter:\n    language: escpos\n    transport: serial\n    bawd: 9600\n    path: /dev/x\n",
			`agent.yaml:5: unknown key "bawd"`},
		{"printers:\n  counter:\n    language: escpos\n    transport: serial\n",
			"agent.yaml:3: printers.counter.path: a serial printer needs path"},
		{"printers:\n  counter:\n    language: escpos\n    transport: serial\n    path: /dev/x\n    baud: 12345\n",
			"agent.yaml:6: printers.counter.baud: 12345 is not a standard rate"},
		{"printers:\n  counter:\n    language: escpos\n    transport: parallel\n",
			`agent.yaml:4: printers.counter.transport: "parallel": expected serial, usb, tcp or fake`},
		{"printers:\n  counter:\n    language: pcl\n    transport: fake\n",
			`agent.yaml:3: printers.counter.language: "pcl"`},
		{"printers:\n  counter:\n    language: zpl\n    transport: tcp\n    address: printer:99999\n",
			`printers.counter.address: "printer:99999": port must be 1-65535`},
		{"printers:\n  Big Printer:\n    language: zpl\n    transport: fake\n",
			`printer name "Big Printer"`},
		{"printers:\n  demo:\n    language: tspl\n    transport: fake\n    media: roll\n",
			`media "roll": want continuous`},
		{"printers:\n  demo:\n    language: tspl\n    transport: fake\n    media: {height_mm: 2}\n",
			"media.height_mm: 2: want 5-2000 mm"},
		{"printers:\n  counter:\n    language: escpos\n    transport: usb\n    path: /dev/usb/lp0\n    status_timeout: 10s\n",
			"printers.counter.status_timeout: 10s: expected 50ms-5s"},
	} {
		_, err := config.Parse("agent.yaml", []byte(tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("config\n%s\nerr = %v\nwant it to contain %q", tc.yaml, err, tc.want)
		}
	}
}
