package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Each bad file is refused with file:line and what was expected.
func TestConfigCheckErrors(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name, src, want string
	}{
		{"unknown key", "box: b1\nboard: sim\nhttp:\n  listne: 127.0.0.1:8080\n",
			`bad.yaml:4: unknown key "listne" in http; expected one of: auth, listen,`},
		{"unknown top key", "box: b1\nbaord: sim\n",
			`bad.yaml:2: unknown key "baord"; expected one of: batteries, board, box, buttons,`},
		{"wrong type", "box: b1\nhttp: 8080\n",
			`bad.yaml:2: "8080" is a whole number, expected a mapping (key: value)`},
		{"no box id", "board: sim\n",
			`bad.yaml:1: box: missing; set box: to an id of this box's own`},
		{"bad box id", "box: Berlin Box!\n",
			`bad.yaml:1: box: "Berlin Box!" is not a valid box id; expected 1-32 lower-case letters`},
		{"bad board", "box: b1\nboard: rpi6\n",
			`bad.yaml:2: board: unknown board "rpi6"; expected one of: auto, cm4, generic, rpi-zero2w, rpi3, rpi4, rpi5, sim`},
		{"bad listen", "http:\n  listen: localhost\n",
			`bad.yaml:2: http.listen: "localhost" is not host:port`},
		{"both brokers", "mqtt:\n  url: tcp://b:1883\n  listen: 127.0.0.1:1883\n",
			`bad.yaml:3: mqtt.listen: set either url (an external broker) or listen (the embedded broker), not both`},
		{"bad scheme", "mqtt:\n  url: http://b:1883\n",
			`bad.yaml:2: mqtt.url: scheme "http" is not supported; expected tcp://host:1883 or ssl://host:8883`},
		{"missing password file", "mqtt:\n  url: tcp://b:1883\n  username: u\n  password_file: /nonexistent/pw\n",
			`bad.yaml:4: mqtt.password_file: cannot read /nonexistent/pw: no such file or directory`},
		{"bad pin line", "pins:\n  lamp: 17\n",
			`bad.yaml:2: pins.lamp: "17" is not a GPIO line name; expected e.g. GPIO17`},
		{"bad log level", "log:\n  level: loud\n",
			`bad.yaml:2: log.level: unknown level "loud"; expected debug, info, warn or error`},
		{"syntax", "box: [b1\n",
			`bad.yaml:1: YAML syntax:`},
		{"undefined printer", "printers:\n  counter: {language: escpos, transport: fake}\nreceipts:\n  pickup_printer: countr\n",
			`bad.yaml:4: receipts.pickup_printer: no printer named "countr"; define it under printers: or leave pickup_printer out`},
		{"list for text", "box: b1\nhttp:\n  listen: [a, b]\n",
			`bad.yaml:3: found a list, expected text`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, "bad.yaml")
			if err := os.WriteFile(path, []byte(c.src), 0o644); err != nil {
				t.Fatal(err)
			}
			var out, errb bytes.Buffer
			code := cli(context.Background(), []string{"config", "check", path}, &out, &errb)
			if code == 0 {
				t.Fatalf("config check accepted:\n%s", c.src)
			}
			want := dir + string(filepath.Separator) + c.want
			if !strings.Contains(errb.String(), want) {
				t.Fatalf("got:\n%s\nwant a line containing:\n%s", errb.String(), want)
			}
			// run refuses the same file before touching anything.
			errb.Reset()
			if code := cli(context.Background(), []string{"run", "--config", path}, &out, &errb); code == 0 || !strings.Contains(errb.String(), "refusing to start") {
				t.Fatalf("run on a bad config: code %d, %q", code, errb.String())
			}
		})
	}
}

func TestConfigCheckGood(t *testing.T) {
	var out, errb bytes.Buffer
	if code := cli(context.Background(), []string{"config", "check", "testdata/config/good.yaml"}, &out, &errb); code != 0 {
		t.Fatalf("good config refused: %s", errb.String())
	}
	if !strings.Contains(out.String(), "ok (box popup-berlin-1, board rpi5)") {
		t.Fatalf("output %q", out.String())
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{nil, {"frobnicate"}, {"config"}, {"run", "--nope"}, {"run", "extra"}} {
		var out, errb bytes.Buffer
		if code := cli(context.Background(), args, &out, &errb); code != 2 {
			t.Errorf("%q: exit %d, want 2 (stderr %q)", args, code, errb.String())
		}
	}
}
