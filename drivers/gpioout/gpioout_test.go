package gpioout

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
	"periph.io/x/conn/v3/physic"

	"fieldkit/drivers/cue"
	"fieldkit/internal/clock"
)

const ms = time.Millisecond

// recPin is a gpiotest pin that records every level and PWM setting with
// the fake clock's time, so a test can assert the exact sequence.
type recPin struct {
	*gpiotest.Pin
	clk   *clock.Fake
	start time.Time
	noPWM bool

	mu  sync.Mutex
	log []string
}

func newRecPin(clk *clock.Fake, noPWM bool) *recPin {
	return &recPin{Pin: &gpiotest.Pin{N: "GPIO17", Num: 17}, clk: clk, start: clk.Now(), noPWM: noPWM}
}

func (p *recPin) Out(l gpio.Level) error {
	p.add(fmt.Sprintf("%v %v", p.clk.Since(p.start), l))
	return p.Pin.Out(l)
}

func (p *recPin) PWM(d gpio.Duty, f physic.Frequency) error {
	if p.noPWM {
		return errors.New("no PWM on this line")
	}
	p.add(fmt.Sprintf("%v PWM %v %v", p.clk.Since(p.start), d, f))
	return p.Pin.PWM(d, f)
}

func (p *recPin) add(s string) {
	p.mu.Lock()
	p.log = append(p.log, s)
	p.mu.Unlock()
}

// take returns the log so far and clears it.
func (p *recPin) take() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.log
	p.log = nil
	return l
}

// waitLog waits until n entries are recorded.
func (p *recPin) waitLog(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		p.mu.Lock()
		got := len(p.log)
		p.mu.Unlock()
		if got >= n {
			return p.take()
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d pin changes: %v", got, n, p.take())
		}
		time.Sleep(time.Millisecond)
	}
}

// advance moves the clock by each d in turn, each time once the output
// is waiting on a timer.
func advance(t *testing.T, clk *clock.Fake, ds ...time.Duration) {
	t.Helper()
	for _, d := range ds {
		if !clk.WaitForTimers(1, 5*time.Second) {
			t.Fatal("output is not waiting on the clock")
		}
		clk.Advance(d)
	}
}

func setup(t *testing.T, o Opts, noPWM bool) (*Out, *recPin, *clock.Fake) {
	t.Helper()
	clk := clock.NewFake(time.Unix(1000, 0))
	p := newRecPin(clk, noPWM)
	o.Clock = clk
	g, err := New(p, &o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	if got := p.take(); !reflect.DeepEqual(got, []string{"0s " + map[bool]string{false: "Low", true: "High"}[o.ActiveLow]}) {
		t.Fatalf("New left the line %v", got)
	}
	return g, p, clk
}

func lv(n int) *int { return &n }

func TestSequences(t *testing.T) {
	cases := []struct {
		name    string
		o       Opts
		noPWM   bool
		a       cue.Action
		advance []time.Duration
		want    []string
	}{
		{"on", Opts{Name: "lamp"}, false, cue.Action{Do: cue.On}, nil, []string{"0s High"}},
		{"on active low", Opts{Name: "relay", ActiveLow: true}, false, cue.Action{Do: cue.On}, nil, []string{"0s Low"}},
		{"pulse", Opts{}, false, cue.Action{Do: cue.Pulse, For: 200 * ms},
			[]time.Duration{200 * ms}, []string{"0s High", "200ms Low"}},
		{"pulse active low", Opts{ActiveLow: true}, false, cue.Action{Do: cue.Pulse, For: 50 * ms},
			[]time.Duration{50 * ms}, []string{"0s Low", "50ms High"}},
		{"blink", Opts{}, false, cue.Action{Do: cue.Blink, Period: 400 * ms, Count: 3},
			[]time.Duration{200 * ms, 200 * ms, 200 * ms, 200 * ms, 200 * ms},
			[]string{"0s High", "200ms Low", "400ms High", "600ms Low", "800ms High", "1s Low"}},
		{"hardware PWM", Opts{}, false, cue.Action{Do: cue.Level, Level: lv(25)}, nil,
			[]string{"0s PWM 25% 1kHz"}},
		{"hardware PWM active low", Opts{ActiveLow: true, Freq: 20 * physic.KiloHertz}, false,
			cue.Action{Do: cue.Level, Level: lv(25)}, nil, []string{"0s PWM 75% 20kHz"}},
		{"software PWM", Opts{SoftPeriod: 10 * ms}, true, cue.Action{Do: cue.Level, Level: lv(30)},
			[]time.Duration{3 * ms, 7 * ms, 3 * ms, 7 * ms},
			[]string{"0s High", "3ms Low", "10ms High", "13ms Low", "20ms High"}},
		{"forced software PWM", Opts{SoftPWM: true, SoftPeriod: 20 * ms}, false, cue.Action{Do: cue.Level, Level: lv(50)},
			[]time.Duration{10 * ms, 10 * ms},
			[]string{"0s High", "10ms Low", "20ms High"}},
		{"level 100 is plain on", Opts{}, false, cue.Action{Do: cue.Level, Level: lv(100)}, nil, []string{"0s High"}},
		{"haptic double on a motor", Opts{Kind: "pwm"}, false, cue.Action{Do: cue.Haptic, Pattern: "double"},
			[]time.Duration{120 * ms, 120 * ms, 120 * ms},
			[]string{"0s High", "120ms Low", "240ms High", "360ms Low"}},
		{"haptic wrap-up ramps by PWM", Opts{Kind: "pwm"}, false, cue.Action{Do: cue.Haptic, Pattern: "wrap-up"},
			[]time.Duration{200 * ms, 200 * ms, 200 * ms, 200 * ms},
			[]string{"0s PWM 60% 1kHz", "200ms Low", "400ms PWM 80% 1kHz", "600ms Low", "800ms High"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g, p, clk := setup(t, c.o, c.noPWM)
			if err := g.Apply(context.Background(), c.a); err != nil {
				t.Fatal(err)
			}
			advance(t, clk, c.advance...)
			if got := p.waitLog(t, len(c.want)); !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got  %q\nwant %q", got, c.want)
			}
		})
	}
}

func TestNextApplyReplacesBlink(t *testing.T) {
	g, p, clk := setup(t, Opts{}, false)
	if err := g.Apply(context.Background(), cue.Action{Do: cue.Blink, Period: time.Second, Count: 10}); err != nil {
		t.Fatal(err)
	}
	advance(t, clk, 500*ms)
	p.waitLog(t, 2)
	if err := g.Apply(context.Background(), cue.Action{Do: cue.On}); err != nil {
		t.Fatal(err)
	}
	if clk.Pending() != 0 {
		t.Fatalf("the blink still waits on %d timers", clk.Pending())
	}
	clk.Advance(10 * time.Second)
	if got := p.take(); !reflect.DeepEqual(got, []string{"500ms High"}) {
		t.Fatalf("after replacing the blink: %q", got)
	}
	if st := g.State().(State); st.Action != cue.On || st.Level != 100 {
		t.Fatalf("state %+v", st)
	}
}

func TestSoftPWMStoppedByOffAndClose(t *testing.T) {
	g, p, clk := setup(t, Opts{}, true)
	if err := g.Apply(context.Background(), cue.Action{Do: cue.Level, Level: lv(50)}); err != nil {
		t.Fatal(err)
	}
	advance(t, clk, 5*ms)
	p.waitLog(t, 2)
	if st := g.State().(State); st.PWM != "software" || st.Level != 50 {
		t.Fatalf("state %+v", st)
	}
	if err := g.Apply(context.Background(), cue.Action{Do: cue.Off}); err != nil {
		t.Fatal(err)
	}
	if clk.Pending() != 0 {
		t.Fatal("software PWM still running after off")
	}
	if got := p.take(); !reflect.DeepEqual(got, []string{"5ms Low"}) {
		t.Fatalf("%q", got)
	}
	// Software PWM again, then Close: the line must end inactive.
	if err := g.Apply(context.Background(), cue.Action{Do: cue.Level, Level: lv(50)}); err != nil {
		t.Fatal(err)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if clk.Pending() != 0 || p.Read() != gpio.Low {
		t.Fatalf("after Close: %d timers, line %v", clk.Pending(), p.Read())
	}
}

func TestCheckRefusesWhatALineCannotDo(t *testing.T) {
	g, _, _ := setup(t, Opts{Name: "lamp"}, false)
	for _, a := range []cue.Action{
		{Do: cue.Color, Color: "#ff0000"},
		{Do: cue.Effect, Effect: "chase"},
		{Do: cue.Haptic, Pattern: "tickle"},
		{Do: cue.Pulse},
	} {
		err := g.Apply(context.Background(), a)
		if err == nil {
			t.Errorf("%+v accepted", a)
			continue
		}
		// The caller names the output; the error says what was refused and
		// what the output can do instead.
		if a.Do == cue.Color && (!errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), `"color"`) || !strings.Contains(err.Error(), "it can do on, off")) {
			t.Errorf("unhelpful error: %v", err)
		}
	}
	if _, err := New(nil, nil); !errors.Is(err, ErrNoPin) {
		t.Fatalf("nil pin: %v", err)
	}
	if _, err := New(&gpiotest.Pin{N: "X"}, &Opts{SoftPeriod: time.Microsecond}); !errors.Is(err, ErrBadOpts) {
		t.Fatalf("tiny period: %v", err)
	}
}

func BenchmarkApplyOn(b *testing.B) {
	g, err := New(&gpiotest.Pin{N: "GPIO17"}, nil)
	if err != nil {
		b.Fatal(err)
	}
	on, off := cue.Action{Do: cue.On}, cue.Action{Do: cue.Off}
	for i := 0; b.Loop(); i++ {
		a := on
		if i%2 == 1 {
			a = off
		}
		if err := g.Apply(context.Background(), a); err != nil {
			b.Fatal(err)
		}
	}
}
