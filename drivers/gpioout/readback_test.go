package gpioout

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"

	"fieldkit/drivers/cue"
)

type outcomes struct {
	mu  sync.Mutex
	got []cue.Outcome
}

func (o *outcomes) Report(_ string, x cue.Outcome) {
	o.mu.Lock()
	o.got = append(o.got, x)
	o.mu.Unlock()
}

// stuckPin is a line that something else holds at one level.
type stuckPin struct {
	gpiotest.Pin
	at gpio.Level
}

func (p *stuckPin) Read() gpio.Level { return p.at }

// A step's on or off is read back from the line: confirmed when it
// holds, failed with what the line reads when it does not; a PWM level
// cannot be read back and is reported nothing.
func TestReadBack(t *testing.T) {
	lvl := 40
	cases := []struct {
		name   string
		pin    gpio.PinIO
		low    bool
		a      cue.Action
		status string
		err    string
	}{
		{"on", &gpiotest.Pin{N: "GPIO17"}, false, cue.Action{Do: cue.On}, cue.Confirmed, ""},
		{"off active low", &gpiotest.Pin{N: "GPIO17"}, true, cue.Action{Do: cue.Off}, cue.Confirmed, ""},
		{"pulse", &gpiotest.Pin{N: "GPIO17"}, false, cue.Action{Do: cue.Pulse, For: time.Hour}, cue.Confirmed, ""},
		{"stuck low", &stuckPin{Pin: gpiotest.Pin{N: "GPIO22"}, at: gpio.Low}, false, cue.Action{Do: cue.On}, cue.Failed, "pin GPIO22 reads Low after it was driven High"},
		{"pwm", &gpiotest.Pin{N: "GPIO18"}, false, cue.Action{Do: cue.Level, Level: &lvl}, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o, err := New(c.pin, &Opts{Name: "lamp", ActiveLow: c.low})
			if err != nil {
				t.Fatal(err)
			}
			defer o.Close()
			var rep outcomes
			if err := o.Apply(cue.WithStep(context.Background(), time.Now(), &rep), c.a); err != nil {
				t.Fatal(err)
			}
			rep.mu.Lock()
			defer rep.mu.Unlock()
			if c.status == "" {
				if len(rep.got) != 0 {
					t.Fatalf("a PWM level reported %+v", rep.got)
				}
				return
			}
			if len(rep.got) != 1 || rep.got[0].Status != c.status || !strings.Contains(rep.got[0].Error, c.err) || rep.got[0].At.IsZero() {
				t.Fatalf("reported %+v, want %s %q", rep.got, c.status, c.err)
			}
		})
	}
}
