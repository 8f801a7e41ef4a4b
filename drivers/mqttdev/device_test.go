package mqttdev

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fieldkit/drivers/cue"
	"fieldkit/internal/clock"
)

var update = flag.Bool("update", false, "rewrite the golden payloads in testdata")

func lv(n int) *int { return &n }

// script is what every device kind is put through for its golden file.
var script = []struct {
	label string
	a     cue.Action
}{
	{"on", cue.Action{Do: cue.On}},
	{"level 40", cue.Action{Do: cue.Level, Level: lv(40)}},
	{"color #ff8000 at 75", cue.Action{Do: cue.Color, Color: "#ff8000", Level: lv(75)}},
	{"effect chase", cue.Action{Do: cue.Effect, Effect: "chase", Color: "#0000ff"}},
	{"level 60 keeps the effect", cue.Action{Do: cue.Level, Level: lv(60)}},
	{"effect flash", cue.Action{Do: cue.Effect, Effect: "flash"}},
	{"off", cue.Action{Do: cue.Off}},
}

func TestGoldenPayloads(t *testing.T) {
	kinds := []Opts{
		{Name: "stage", Kind: WLED, Topic: "wled/stage"},
		{Name: "plug", Kind: Tasmota, Topic: "stage-plug"},
		{Name: "relay", Kind: Shelly, Topic: "shellyplus1-a8032ab12345"},
		{Name: "dimmer", Kind: Shelly, Topic: "shellydimmer2-1", Channel: 1, Dimmable: true},
		{Name: "bulb", Kind: Z2M, Topic: "desk bulb"},
		{Name: "relay2", Kind: Tasmota, Topic: "strip-4ch", Channel: 2},
		{Name: "hue", Kind: Z2M, Topic: "stage hue", Effects: []string{"blink", "breathe", "okay", "channel_change", "finish_effect", "stop_effect"}},
	}
	for _, o := range kinds {
		t.Run(o.Name, func(t *testing.T) {
			fc := newFakeConn()
			d, err := NewDevice(fc, &o)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			var b strings.Builder
			for _, s := range script {
				b.WriteString("# " + s.label + "\n")
				err := d.Apply(context.Background(), s.a)
				if err != nil {
					b.WriteString("refused: " + err.Error() + "\n")
					continue
				}
				if err := d.Flush(context.Background()); err != nil {
					t.Fatal(err)
				}
				for _, p := range fc.take() {
					b.WriteString(p + "\n")
				}
			}
			golden(t, o.Name+".golden", b.String())
		})
	}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Fatalf("payloads differ from %s:\ngot:\n%swant:\n%s", path, got, want)
	}
}

func TestPulseOnTheClockAndReassert(t *testing.T) {
	clk := clock.NewFake(time.Unix(0, 0))
	fc := newFakeConn()
	// Read-back is off: this test counts the clock's timers, and the
	// confirmation deadline has tests of its own.
	d, err := NewDevice(fc, &Opts{Name: "plug", Kind: Tasmota, Topic: "plug1", Clock: clk, Deadline: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Apply(context.Background(), cue.Action{Do: cue.Pulse, For: 300 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	got := fc.waitPubs(t, 2)
	if got[1] != "cmnd/plug1/POWER q1 r=false ON" {
		t.Fatalf("pulse start %q", got)
	}
	if !clk.WaitForTimers(1, 5*time.Second) {
		t.Fatal("pulse is not timed on the clock")
	}
	clk.Advance(299 * time.Millisecond)
	if p := fc.take(); len(p) != 0 {
		t.Fatalf("early: %q", p)
	}
	clk.Advance(time.Millisecond)
	if got := fc.waitPubs(t, 1); got[0] != "cmnd/plug1/POWER q1 r=false OFF" {
		t.Fatalf("pulse end %q", got)
	}
	// After a reconnect the device is told its desired state again.
	if err := d.Apply(context.Background(), cue.Action{Do: cue.Level, Level: lv(30)}); err != nil {
		t.Fatal(err)
	}
	fc.waitPubs(t, 2)
	fc.reconnect()
	if !clk.WaitForTimers(1, 5*time.Second) {
		t.Fatal("re-assert does not settle on the clock")
	}
	clk.Advance(100 * time.Millisecond)
	want := []string{"cmnd/plug1/Dimmer q1 r=false 30", "cmnd/plug1/POWER q1 r=false ON"}
	if got := fc.waitPubs(t, 2); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("re-asserted %q, want %q", got, want)
	}
}

func TestPublishFailureIsReportedNotBlocking(t *testing.T) {
	fc := newFakeConn()
	fc.down = true
	d, err := NewDevice(fc, &Opts{Kind: Z2M, Topic: "lamp"})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Apply(context.Background(), cue.Action{Do: cue.On}); err != nil {
		t.Fatal(err)
	}
	d.Flush(context.Background())
	if st := d.State().(State); !st.On || !strings.Contains(st.Error, "not connected") {
		t.Fatalf("state %+v", st)
	}
	fc.down = false
	fc.reconnect()
	if got := fc.waitPubs(t, 1); got[0] != `zigbee2mqtt/lamp/set q1 r=false {"state":"ON","brightness":254}` {
		t.Fatalf("%q", got)
	}
}

func TestCheckPerKind(t *testing.T) {
	cases := []struct {
		o    Opts
		a    cue.Action
		want string
	}{
		{Opts{Kind: Shelly, Topic: "s"}, cue.Action{Do: cue.Level, Level: lv(5)}, "cannot dim"},
		{Opts{Kind: Shelly, Topic: "s"}, cue.Action{Do: cue.Color, Color: "#ffffff"}, "has no colour"},
		{Opts{Kind: Tasmota, Topic: "s"}, cue.Action{Do: cue.Effect, Effect: "chase"}, "only WLED"},
		{Opts{Kind: WLED, Topic: "s"}, cue.Action{Do: cue.Effect, Effect: "countdown", For: time.Second}, "LED strip"},
		{Opts{Kind: WLED, Topic: "s"}, cue.Action{Do: cue.Haptic, Pattern: "nope"}, "unknown haptic pattern"},
	}
	for _, c := range cases {
		d, err := NewDevice(newFakeConn(), &c.o)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Check(c.a); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %+v: %v, want %q", c.o.Kind, c.a, err, c.want)
		}
		d.Close()
	}
	for _, o := range []Opts{{Kind: "hue", Topic: "x"}, {Kind: WLED}, {Kind: WLED, Topic: "a/#"}} {
		if _, err := NewDevice(newFakeConn(), &o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}
