package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"fieldkit/internal/mqtttest"
)

// firstPlace is the first "file:line:" of a message.
var firstPlace = regexp.MustCompile(`(?m)(/[^\s:]+\.yaml):(\d+):`)

// Every config run refuses, config check refuses at the same file:line:
// they run the same checks, before any hardware is opened.
func TestConfigCheckRefusesWhatRunRefuses(t *testing.T) {
	lampScene := "name: lamp\nsteps:\n  - {at: 0s, target: lamp, do: \"on\"}\n"
	cases := []struct {
		name   string
		config string
		scene  string // a scene file, when the case needs one
		// where is the text on the line the refusal must name, and in
		// which file ("config" or "scene").
		where, in string
	}{
		{"undefined pin name", "board: sim\noutputs:\n  lamp: {kind: gpio, pin: no_such_name}\n", "", "pin: no_such_name", "config"},
		{"line the board lacks", "board: rpi4\nmqtt: {url: tcp://127.0.0.1:1}\noutputs:\n  lamp: {kind: gpio, pin: GPIO99}\n", "", "pin: GPIO99", "config"},
		{"pins: entry the board lacks", "board: rpi4\nmqtt: {url: tcp://127.0.0.1:1}\npins:\n  lamp: GPIO99\noutputs:\n  lamp: {kind: gpio, pin: lamp}\n", "", "lamp: GPIO99", "config"},
		{"sim line beyond the header", "board: sim\noutputs:\n  motor: {kind: pwm, pin: GPIO40}\n", "", "pin: GPIO40", "config"},
		{"button on an undefined pin", "board: sim\nbuttons:\n  big-red: {pin: big_red_pin}\n", "", "pin: big_red_pin", "config"},
		{"scene trigger on an undefined button", "board: sim\noutputs:\n  lamp: {kind: gpio, pin: cue_lamp}\n",
			"name: lamp\ntriggers:\n  - {button: big-red}\nsteps:\n  - {at: 0s, target: lamp, do: \"on\"}\n", "button: big-red", "scene"},
		{"scene target undefined", "board: sim\noutputs:\n  lamp: {kind: gpio, pin: cue_lamp}\n",
			"name: lamp\nsteps:\n  - {at: 0s, target: lamp, do: \"on\"}\n  - {at: 1s, target: lampp, do: \"off\"}\n", "target: lampp", "scene"},
		{"pickup printer undefined", "board: sim\nprinters:\n  counter: {language: escpos, transport: fake}\nreceipts:\n  pickup_printer: countr\n", "", "pickup_printer: countr", "config"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			sdir := filepath.Join(dir, "scenes")
			if err := os.Mkdir(sdir, 0o755); err != nil {
				t.Fatal(err)
			}
			scene := c.scene
			if scene == "" {
				scene = lampScene
			}
			scenePath := filepath.Join(sdir, "lamp.yaml")
			if err := os.WriteFile(scenePath, []byte(scene), 0o644); err != nil {
				t.Fatal(err)
			}
			src := "box: b1\n" + c.config
			if c.in == "scene" || strings.Contains(c.config, "outputs:") && strings.Contains(c.config, "lamp:") {
				src += "scenes: {dir: " + sdir + "}\n"
			}
			cfg := filepath.Join(dir, "agent.yaml")
			if err := os.WriteFile(cfg, []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
			file, text := cfg, src
			if c.in == "scene" {
				file, text = filepath.Join(sdir, "lamp.yaml"), scene
			}
			want := fmt.Sprintf("%s:%d:", file, lineOf(t, text, c.where))

			var out, checkErr bytes.Buffer
			if code := cli(context.Background(), []string{"config", "check", cfg}, &out, &checkErr); code == 0 {
				t.Fatalf("config check accepted what run must refuse:\n%s", src)
			}
			// run, bounded: a run that starts would serve until the deadline.
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			var runErr bytes.Buffer
			code := cli(ctx, []string{"run", "--config", cfg, "--data", t.TempDir(), "--http", mqtttest.FreePort(t)}, &out, &runErr)
			if code == 0 || !strings.Contains(runErr.String(), "refusing to start") {
				t.Fatalf("run did not refuse: exit %d\n%s", code, runErr.String())
			}
			gotCheck, gotRun := place(checkErr.String()), place(runErr.String())
			if gotCheck != want || gotRun != want {
				t.Fatalf("want both at %s\nconfig check said (%s):\n%s\nrun said (%s):\n%s", want, gotCheck, checkErr.String(), gotRun, runErr.String())
			}
		})
	}
}

func place(msg string) string {
	m := firstPlace.FindStringSubmatch(msg)
	if m == nil {
		return "no file:line"
	}
	return m[1] + ":" + m[2] + ":"
}

// lineOf is the 1-based line of text that contains s.
func lineOf(t *testing.T, text, s string) int {
	t.Helper()
	for i, l := range strings.Split(text, "\n") {
		if strings.Contains(l, s) {
			return i + 1
		}
	}
	t.Fatalf("%q not in\n%s", s, text)
	return 0
}
