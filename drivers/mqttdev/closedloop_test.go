package mqttdev

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"fieldkit/drivers/cue"
	"fieldkit/internal/bus"
	"fieldkit/internal/mqtttest"
	"fieldkit/internal/testutil"
)

// results collects what OnResult is told.
type results struct {
	mu  sync.Mutex
	got []Result
}

func (r *results) add(res Result) { r.mu.Lock(); r.got = append(r.got, res); r.mu.Unlock() }

func (r *results) last() (Result, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.got) == 0 {
		return Result{}, false
	}
	return r.got[len(r.got)-1], true
}

func feedback(d *Device) Feedback { return *d.State().(State).Feedback }

// Every kind, against a simulator with its own latency on Mosquitto:
// the command is confirmed from the device's own report, the link is
// online, and the latency lands in the output's histogram.
func TestConfirmedByEachKind(t *testing.T) {
	url := mqtttest.StartMosquitto(t).URL()
	conn, ctx := startAgentConn(t, url)
	reg := prometheus.NewRegistry()
	met, err := cue.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	kinds := []struct {
		o   Opts
		lat time.Duration
		a   cue.Action
	}{
		{Opts{Name: "stage", Kind: WLED, Topic: "wled/stage"}, 5 * time.Millisecond, cue.Action{Do: cue.Level, Level: lv(40)}},
		{Opts{Name: "strip", Kind: Tasmota, Topic: "strip-4ch", Channel: 2}, 40 * time.Millisecond, cue.Action{Do: cue.On}},
		{Opts{Name: "bulb", Kind: Tasmota, Topic: "rgb-bulb"}, 20 * time.Millisecond, cue.Action{Do: cue.Color, Color: "#ff8000", Level: lv(75)}},
		{Opts{Name: "relay", Kind: Shelly, Topic: "shellyplus1-a8032ab12345"}, 10 * time.Millisecond, cue.Action{Do: cue.On}},
		{Opts{Name: "hue", Kind: Z2M, Topic: "stage hue"}, 150 * time.Millisecond, cue.Action{Do: cue.Level, Level: lv(60)}},
	}
	var devs []*Device
	for _, k := range kinds {
		startSim(t, url, k.o, k.lat)
		o := k.o
		o.Metrics = met
		d, err := NewDevice(conn, &o)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		devs = append(devs, d)
	}
	testutil.WaitFor(t, 10*time.Second, "connect", conn.Connected)
	for i, d := range devs {
		testutil.WaitFor(t, 10*time.Second, d.Name()+" online", func() bool { return feedback(d).Link == "online" })
		if err := d.Apply(cue.WithPlanned(ctx, time.Now()), kinds[i].a); err != nil {
			t.Fatal(err)
		}
	}
	for i, d := range devs {
		testutil.WaitFor(t, 10*time.Second, d.Name()+" confirmed", func() bool {
			f := feedback(d)
			return f.Last != nil && f.Last.Status == "confirmed"
		})
		f := feedback(d)
		// Measured from the command, so at least about the device's own
		// latency (timer granularity aside).
		if r := d.PreShow(); r.Level != "ok" {
			t.Errorf("%s pre-show: %+v", d.Name(), r)
		}
		if f.Last.Latency < kinds[i].lat*9/10 || f.Last.Sends != 1 || f.Confirmed == nil || !f.Confirmed.On || f.P50Ms <= 0 {
			t.Errorf("%s: %+v (last %+v)", d.Name(), f, *f.Last)
		}
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]uint64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "output" {
					seen[mf.GetName()+" "+l.GetValue()] = m.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	for _, d := range devs {
		for _, name := range []string{"fieldkit_cue_confirmation_seconds", "fieldkit_cue_latency_seconds"} {
			if seen[name+" "+d.Name()] < 1 {
				t.Errorf("no %s observed for %s: %v", name, d.Name(), seen)
			}
		}
	}
}

// An unplugged bulb (no availability, no answer): the command is sent
// twice, then fails with an alert on the bus.
func TestUnpluggedDeviceFails(t *testing.T) {
	url := mqtttest.StartMosquitto(t).URL()
	conn, ctx := startAgentConn(t, url)
	sets := mqtttest.Connect(t, url, "observer").Subscribe("zigbee2mqtt/#")
	b := bus.New(nil)
	alerts := b.Subscribe("cue/+/alert", 4)
	var rs results
	d, err := NewDevice(conn, &Opts{Name: "lamp", Kind: Z2M, Topic: "lamp", Deadline: 200 * time.Millisecond, Bus: b, OnResult: rs.add})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	testutil.WaitFor(t, 10*time.Second, "connect", conn.Connected)
	if err := d.Apply(ctx, cue.Action{Do: cue.On}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		mqtttest.Await(t, sets, 10*time.Second, "command to the lamp", func(m mqtttest.Msg) bool {
			return m.Topic == "zigbee2mqtt/lamp/set" && m.Payload == `{"state":"ON","brightness":254}`
		})
	}
	select {
	case ev := <-alerts.C():
		var a struct {
			Output, Reason string
			Sends          int
		}
		if err := json.Unmarshal(ev.Payload, &a); err != nil || ev.Topic != "cue/lamp/alert" || a.Sends != 2 ||
			!strings.Contains(a.Reason, "never reported its availability") {
			t.Fatalf("alert %s %s (%v)", ev.Topic, ev.Payload, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no alert for the unplugged lamp")
	}
	res, ok := rs.last()
	if !ok || res.Status != "failed" || res.Sends != 2 {
		t.Fatalf("result %+v", res)
	}
	if f := feedback(d); f.Link != "unknown" || f.Confirmed != nil || f.Commanded == nil || !f.Commanded.On || f.Pending {
		t.Fatalf("feedback %+v", f)
	}
	if r := d.PreShow(); r.Level != "fail" || !strings.Contains(r.Detail, "last command failed") || r.Fix == "" {
		t.Fatalf("pre-show %+v", r)
	}
}

// A Shelly that answers with an error object: failed at once, with the
// device's message.
func TestShellyErrorFails(t *testing.T) {
	url := mqtttest.StartMosquitto(t).URL()
	conn, ctx := startAgentConn(t, url)
	o := Opts{Name: "relay", Kind: Shelly, Topic: "shellypro4pm-1", Channel: 7}
	s := startSim(t, url, o, 5*time.Millisecond)
	s.FailRPC("Argument 'id', value 7 not found!")
	b := bus.New(nil)
	alerts := b.Subscribe("cue/+/alert", 4)
	var rs results
	o.Bus, o.OnResult = b, rs.add
	d, err := NewDevice(conn, &o)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	testutil.WaitFor(t, 10*time.Second, "connect", conn.Connected)
	if err := d.Apply(ctx, cue.Action{Do: cue.On}); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, "a result", func() bool { _, ok := rs.last(); return ok })
	res, _ := rs.last()
	if res.Status != "failed" || res.Sends != 1 || !strings.Contains(res.Error, "value 7 not found") {
		t.Fatalf("result %+v", res)
	}
	select {
	case ev := <-alerts.C():
		if ev.Topic != "cue/relay/alert" || !strings.Contains(string(ev.Payload), "value 7 not found") {
			t.Fatalf("alert %s %s", ev.Topic, ev.Payload)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no alert")
	}
}

// A plug that goes offline and comes back is told the state it should
// have now, and confirms it.
func TestBackOnlineReasserts(t *testing.T) {
	url := mqtttest.StartMosquitto(t).URL()
	conn, ctx := startAgentConn(t, url)
	o := Opts{Name: "plug", Kind: Tasmota, Topic: "stage-plug"}
	s := startSim(t, url, o, 5*time.Millisecond)
	var rs results
	o.OnResult = rs.add
	d, err := NewDevice(conn, &o)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	testutil.WaitFor(t, 10*time.Second, "connect", conn.Connected)
	testutil.WaitFor(t, 10*time.Second, "online", func() bool { return feedback(d).Link == "online" })
	if err := d.Apply(ctx, cue.Action{Do: cue.Level, Level: lv(30)}); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, "confirmed", func() bool { r, ok := rs.last(); return ok && r.Status == "confirmed" })

	s.setOnline(t, false)
	testutil.WaitFor(t, 10*time.Second, "offline", func() bool { return feedback(d).Link == "offline" })
	if r := d.PreShow(); r.Level != "fail" || !strings.Contains(r.Detail, "offline since") {
		t.Fatalf("pre-show while offline %+v", r)
	}
	before := len(s.commands())
	s.setOnline(t, true)
	want := []string{"cmnd/stage-plug/Dimmer 30", "cmnd/stage-plug/POWER ON"}
	testutil.WaitFor(t, 10*time.Second, "state re-asserted", func() bool {
		got := s.commands()[before:]
		return len(got) >= 2 && got[0] == want[0] && got[1] == want[1]
	})
	testutil.WaitFor(t, 10*time.Second, "re-assert confirmed", func() bool {
		rs.mu.Lock()
		defer rs.mu.Unlock()
		return len(rs.got) == 2 && rs.got[1].Status == "confirmed"
	})
	if r := d.PreShow(); r.Level != "ok" {
		t.Fatalf("pre-show once back %+v", r)
	}
	if f := feedback(d); f.Link != "online" || f.LinkSince == nil || f.Confirmed == nil || f.Confirmed.Brightness != 30 {
		t.Fatalf("feedback %+v", f)
	}
}

// Device reports never panic the parser, whatever arrives.
func FuzzParseReport(f *testing.F) {
	f.Add(0, "wled/stage/g", "102")
	f.Add(0, "wled/stage/v", "<?xml version=\"1.0\" ?><vs><ac>102</ac><cl>255</cl></vs>")
	f.Add(0, "wled/stage/status", "online")
	f.Add(1, "stat/plug/RESULT", `{"POWER2":"ON","Dimmer":40}`)
	f.Add(1, "tele/plug/LWT", "Offline")
	f.Add(1, "stat/plug/POWER2", "OFF")
	f.Add(2, "fieldkit/box1/shelly/relay/rpc", `{"id":3,"src":"s","error":{"code":-105,"message":"no"}}`)
	f.Add(2, "shelly1/online", "true")
	f.Add(3, "zigbee2mqtt/bulb/availability", `{"state":"online"}`)
	f.Add(3, "zigbee2mqtt/bulb", `{"state":"ON","brightness":254}`)
	opts := []Opts{
		{Name: "stage", Kind: WLED, Topic: "wled/stage"},
		{Name: "plug", Kind: Tasmota, Topic: "plug", Channel: 2},
		{Name: "relay", Kind: Shelly, Topic: "shelly1"},
		{Name: "bulb", Kind: Z2M, Topic: "bulb", Base: "zigbee2mqtt"},
	}
	f.Fuzz(func(t *testing.T, k int, topic, payload string) {
		if k < 0 {
			k = -k
		}
		o := opts[k%len(opts)]
		r, ok := ParseReport(o, "fieldkit/box1", topic, []byte(payload))
		if !ok && (r.On != nil || r.Online != nil || r.Reply != nil) {
			t.Fatalf("not ok but %+v", r)
		}
		if r.Bri != nil && (*r.Bri < 0 || *r.Bri > 255) {
			t.Fatalf("brightness %d", *r.Bri)
		}
	})
}

// The reports each kind's docs show, and what the agent reads from them.
func TestParseReport(t *testing.T) {
	wled := Opts{Name: "stage", Kind: WLED, Topic: "wled/stage"}
	tas := Opts{Name: "plug", Kind: Tasmota, Topic: "plug", Channel: 2}
	tas1 := Opts{Name: "bulb", Kind: Tasmota, Topic: "bulb"}
	sh := Opts{Name: "relay", Kind: Shelly, Topic: "shelly1"}
	z := Opts{Name: "bulb", Kind: Z2M, Topic: "desk", Base: "zigbee2mqtt"}
	str := func(r Report) string {
		var b strings.Builder
		if r.Online != nil {
			fmt.Fprintf(&b, "online=%v ", *r.Online)
		}
		if r.On != nil {
			fmt.Fprintf(&b, "on=%v ", *r.On)
		}
		if r.Bri != nil {
			fmt.Fprintf(&b, "bri=%d ", *r.Bri)
		}
		if r.Reply != nil {
			fmt.Fprintf(&b, "reply=%d err=%q", *r.Reply, r.ReplyErr)
		}
		return strings.TrimSpace(b.String())
	}
	cases := []struct {
		o        Opts
		topic, p string
		want     string
		ok       bool
	}{
		{wled, "wled/stage/status", "offline", "online=false", true},
		{wled, "wled/stage/g", "0", "on=false bri=0", true},
		{wled, "wled/stage/v", `<?xml version="1.0" ?><vs><ac>102</ac><cl>255</cl><cl>128</cl><cl>0</cl></vs>`, "on=true bri=102", true},
		{wled, "wled/stage/c", "#FF8000", "", false},
		{tas, "tele/plug/LWT", "Online", "online=true", true},
		{tas, "stat/plug/RESULT", `{"POWER2":"ON"}`, "on=true", true},
		{tas, "stat/plug/RESULT", `{"POWER1":"OFF"}`, "", false},
		{tas, "stat/plug/POWER2", "OFF", "on=false", true},
		{tas1, "stat/bulb/RESULT", `{"POWER":"ON","Dimmer":40,"Color":"66330000"}`, "on=true bri=40", true},
		{sh, "shelly1/online", "false", "online=false", true},
		{sh, "fieldkit/box1/shelly/relay/rpc", `{"id":7,"src":"shelly1","dst":"fieldkit/box1/shelly/relay","result":{"was_on":false}}`, `reply=7 err=""`, true},
		{sh, "fieldkit/box1/shelly/relay/rpc", `{"id":8,"src":"shelly1","error":{"code":-105,"message":"Argument 'id', value 3 not found!"}}`, `reply=8 err="Argument 'id', value 3 not found!"`, true},
		{z, "zigbee2mqtt/desk/availability", `{"state":"offline"}`, "online=false", true},
		{z, "zigbee2mqtt/desk/availability", "online", "online=true", true},
		{z, "zigbee2mqtt/desk", `{"state":"ON","brightness":102,"linkquality":99}`, "on=true bri=102", true},
	}
	for _, c := range cases {
		r, ok := ParseReport(c.o, "fieldkit/box1", c.topic, []byte(c.p))
		if ok != c.ok || str(r) != c.want {
			t.Errorf("%s %s: %q ok=%v, want %q ok=%v", c.topic, c.p, str(r), ok, c.want, c.ok)
		}
	}
}

// lead: auto is learned from Apply to the device's confirmation; a fixed
// lead is what was configured.
func TestLeadAutoLearns(t *testing.T) {
	url := mqtttest.StartMosquitto(t).URL()
	conn, ctx := startAgentConn(t, url)
	o := Opts{Name: "strip", Kind: WLED, Topic: "wled/strip", Lead: cue.Lead{Auto: true}}
	startSim(t, url, o, 40*time.Millisecond)
	var rs results
	o.OnResult = rs.add
	d, err := NewDevice(conn, &o)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.Lead() != 0 {
		t.Fatalf("lead %v before any confirmation", d.Lead())
	}
	testutil.WaitFor(t, 10*time.Second, "online", func() bool { return feedback(d).Link == "online" })
	for i := 1; i <= 3; i++ {
		if err := d.Apply(ctx, cue.Action{Do: cue.Level, Level: lv(10 * i)}); err != nil {
			t.Fatal(err)
		}
		testutil.WaitFor(t, 10*time.Second, "confirmed", func() bool {
			rs.mu.Lock()
			defer rs.mu.Unlock()
			return len(rs.got) == i
		})
	}
	if l := d.Lead(); l < 36*time.Millisecond || l > 5*time.Second {
		t.Fatalf("learned lead %v for a device that answers after 40ms", l)
	}
	fixed, err := NewDevice(conn, &Opts{Name: "fixed", Kind: WLED, Topic: "wled/fixed", Lead: cue.Lead{Fixed: 120 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer fixed.Close()
	if fixed.Lead() != 120*time.Millisecond {
		t.Fatalf("fixed lead %v", fixed.Lead())
	}
}
