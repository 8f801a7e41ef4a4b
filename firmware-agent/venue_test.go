package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"fieldkit/boards"
	"fieldkit/firmware-agent/config"
	"fieldkit/internal/clock"
	"fieldkit/internal/doctor"
	"fieldkit/internal/health"
	"fieldkit/internal/mqtttest"
	"fieldkit/internal/testutil"
	"fieldkit/scenes"
	"fieldkit/sync/receipts"
	"fieldkit/venue"
)

// venueScene is a venue-wide scene with one cue at its start.
const venueScene = `name: open
scope: venue
policy: restart
steps:
  - {at: 0s, target: cue_lamp, do: "on"}
`

// venueBox is one agent built and run in this process, on its own data
// dir, joined to a venue on a shared broker.
type venueBox struct {
	box    string
	a      *app
	cancel context.CancelFunc
	done   chan error
}

func (b *venueBox) stop(t *testing.T) {
	t.Helper()
	if b.cancel == nil {
		return
	}
	b.cancel()
	b.cancel = nil
	select {
	case err := <-b.done:
		if err != nil {
			t.Errorf("box %s: run: %v", b.box, err)
		}
	case <-time.After(15 * time.Second):
		t.Errorf("box %s did not stop", b.box)
	}
}

// startVenueBox builds the agent from a config like a crew's (venue:
// section included) and runs it; clk is the box's clock (an offset one
// for a box whose clock is off).
func startVenueBox(t *testing.T, brokerURL, box, venueExtra string, clk clock.Clock) *venueBox {
	t.Helper()
	dir := t.TempDir()
	sc := filepath.Join(dir, "scenes")
	if err := os.MkdirAll(sc, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sc, "open.yaml"), []byte(venueScene), 0o644); err != nil {
		t.Fatal(err)
	}
	text := fmt.Sprintf(`box: %s
board: sim
data_dir: %s
http: {listen: "%s"}
mqtt: {url: "%s"}
log: {level: error}
scenes: {dir: %s}
outputs:
  cue_lamp: {kind: gpio, pin: cue_lamp}
venue: {id: hall-a, role: zone-%s, clock_every: 250ms%s}
`, box, filepath.Join(dir, "data"), mqtttest.FreePort(t), brokerURL, sc, box, venueExtra)
	cfg, err := config.Parse(filepath.Join(dir, "agent.yaml"), []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		t.Fatal(err)
	}
	a, err := buildOn(cfg, discardLogger(), boards.NewSim(cfg.Pins), clk)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &venueBox{box: box, a: a, cancel: cancel, done: make(chan error, 1)}
	go func() { b.done <- a.run(ctx) }()
	t.Cleanup(func() { b.stop(t) })
	return b
}

// agentRuntime gives the test process the Go runtime settings the agent
// runs with (scenes.ReserveProcs: spare processors for the timelines'
// threads, a calmer collector), as each box does, and puts the test's
// back afterwards.
func agentRuntime(t *testing.T) {
	procs := runtime.GOMAXPROCS(0)
	gc := debug.SetGCPercent(100)
	limit := debug.SetMemoryLimit(-1)
	debug.SetGCPercent(gc)
	scenes.ReserveProcs()
	t.Cleanup(func() {
		runtime.GOMAXPROCS(procs)
		debug.SetGCPercent(gc)
		debug.SetMemoryLimit(limit)
	})
}

func online(st venue.State) []string {
	var out []string
	for _, m := range st.Members {
		if m.Online && m.Instance != "" {
			out = append(out, m.Box)
		}
	}
	return out
}

func checkResult(t *testing.T, a *app, name string) doctor.Result {
	t.Helper()
	for _, c := range a.checks {
		if c.Name == name {
			return c.Run(t.Context())
		}
	}
	t.Fatalf("no check %q", name)
	return doctor.Result{}
}

// Three agents built in this process on one Mosquitto, each with its own
// data dir: each sees the three; a venue scene fired on any of them starts
// on all three at one instant; the venue's report merges the members'
// ledgers and names the one that is gone.
func TestVenueThreeBoxesInProcess(t *testing.T) {
	agentRuntime(t)
	m := mqtttest.StartMosquitto(t)
	boxes := []*venueBox{
		startVenueBox(t, m.URL(), "stage", ", reference: true", clock.Real()),
		startVenueBox(t, m.URL(), "pickup", "", clock.Real()),
		startVenueBox(t, m.URL(), "entrance", "", clock.Real()),
	}
	for _, b := range boxes {
		testutil.WaitFor(t, 20*time.Second, b.box+" sees the three boxes online", func() bool {
			return len(online(b.a.venue.State())) == 3
		})
	}
	for _, b := range boxes {
		st := b.a.venue.State()
		if st.Reference != "stage" {
			t.Fatalf("%s: reference %q, want the configured stage", b.box, st.Reference)
		}
		if b.box != "stage" {
			testutil.WaitFor(t, 10*time.Second, b.box+" measured its clock", func() bool { return b.a.venue.State().Samples >= 2 })
			if r := checkResult(t, b.a, "venue clock"); r.Status != doctor.OK {
				t.Fatalf("%s: venue clock check %s: %s", b.box, r.Status, r.Detail)
			}
		}
		if r := checkResult(t, b.a, "venue members"); r.Status != doctor.OK {
			t.Fatalf("%s: venue members check %s: %s", b.box, r.Status, r.Detail)
		}
	}
	// The crew page's source: the members with their state.
	var page venue.State
	getVenueJSON(t, "http://"+boxes[2].a.httpLn.Addr().String()+"/api/venue", &page)
	if len(page.Members) != 3 || !slices.ContainsFunc(page.Members, func(m venue.MemberState) bool { return m.Box == "entrance" && m.Self && m.Role == "zone-entrance" }) {
		t.Fatalf("GET /api/venue members: %+v", page.Members)
	}

	// Venue fires from each box in turn, the first over HTTP: each lands
	// on the three at the one instant, in time. (The spread of 100 fires
	// is measured on three agent processes: TestVenueRealAgents.)
	fireLoop(t, 9, func(i int) {
		from := boxes[i%3]
		if i == 0 {
			postRun(t, from.a.httpLn.Addr().String())
		} else if _, err := from.a.scenes.Fire("open", "test", nil); err != nil {
			t.Fatalf("fire %d on %s: %v", i, from.box, err)
		}
	}, func() []*scenes.RunRecord {
		var out []*scenes.RunRecord
		for _, b := range boxes {
			d, _ := b.a.scenes.Get("open")
			out = append(out, d.LastRun)
		}
		return out
	})

	// The venue's report: stage and pickup sold; entrance is gone.
	sell := func(b *venueBox, id string, sku string, total int64) {
		for _, p := range b.a.parts {
			if r, ok := p.(receiptsPart); ok {
				if _, _, err := r.Append(t.Context(), receipts.Order{ClientID: id, Order: id, Currency: "EUR", Pay: "card", Total: total,
					Items: []receipts.Item{{SKU: sku, Qty: 1, Price: total}}}); err != nil {
					t.Fatal(err)
				}
				return
			}
		}
		t.Fatalf("%s has no ledger", b.box)
	}
	sell(boxes[0], "s-1", "TEE", 2500)
	sell(boxes[1], "p-1", "TEE", 2500)
	sell(boxes[1], "p-2", "CAP", 1200)
	rep, err := boxes[1].a.venue.Report(t.Context(), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Members) != 3 || len(rep.Missing) != 0 || !rep.Complete || len(rep.Totals) != 1 || rep.Totals[0].Total != 6200 || rep.Totals[0].Count != 3 {
		t.Fatalf("venue report with every box: %+v", rep)
	}
	boxes[2].stop(t)
	testutil.WaitFor(t, 10*time.Second, "entrance offline", func() bool { return len(online(boxes[0].a.venue.State())) == 2 })
	var rep2 venue.Report
	getVenueJSON(t, "http://"+boxes[0].a.httpLn.Addr().String()+"/api/venue/report", &rep2)
	if rep2.Complete || !slices.Equal(rep2.Missing, []string{"entrance"}) || len(rep2.Members) != 2 || rep2.Totals[0].Total != 6200 {
		t.Fatalf("venue report without entrance: %+v", rep2)
	}
	if !slices.ContainsFunc(rep2.BySKU, func(s venue.SKUTotal) bool { return s.SKU == "TEE" && s.Qty == 2 && s.Total == 5000 }) {
		t.Fatalf("merged by SKU: %+v", rep2.BySKU)
	}
}

// A box whose clock is 80 ms ahead (injected through its clock, as a
// box without NTP would be) is found out: its measured offset is within
// 5 ms of 80, its pre-show check fails and says what to do, its part is
// degraded, and /metrics shows the offset.
func TestVenueClockOffsetDetected(t *testing.T) {
	m := mqtttest.StartMosquitto(t)
	ref := startVenueBox(t, m.URL(), "stage", ", reference: true", clock.Real())
	good := startVenueBox(t, m.URL(), "pickup", "", clock.Real())
	off := startVenueBox(t, m.URL(), "entrance", "", clock.Offset(clock.Real(), 80*time.Millisecond))
	for _, b := range []*venueBox{ref, good, off} {
		testutil.WaitFor(t, 20*time.Second, b.box+" sees the three boxes online", func() bool {
			return len(online(b.a.venue.State())) == 3
		})
	}
	testutil.WaitFor(t, 20*time.Second, "a full window of clock samples", func() bool {
		return off.a.venue.State().Samples >= venue.Window && good.a.venue.State().Samples >= venue.Window
	})
	st := off.a.venue.State()
	if st.OffsetMS == nil || math.Abs(*st.OffsetMS-80) > 5 {
		t.Fatalf("measured offset %v ms (rtt %v), want 80 ± 5", deref(st.OffsetMS), deref(st.RTTMS))
	}
	t.Logf("injected +80 ms: measured %.2f ms (rtt %.2f ms)", *st.OffsetMS, *st.RTTMS)
	r := checkResult(t, off.a, "venue clock")
	if r.Status != doctor.Fail || !strings.Contains(r.Detail, "ahead of the reference stage") || !strings.Contains(r.Fix, "chronyc tracking") {
		t.Fatalf("venue clock check on the box 80 ms ahead: %+v", r)
	}
	if r := checkResult(t, good.a, "venue clock"); r.Status != doctor.OK {
		t.Fatalf("venue clock check on the good box: %+v", r)
	}
	testutil.WaitFor(t, 5*time.Second, "venue part degraded", func() bool {
		p, _ := off.a.health.Get("venue")
		return p.State == health.Degraded && strings.Contains(p.Reason, "ahead of the reference")
	})
	// The others see it in its presence.
	testutil.WaitFor(t, 5*time.Second, "stage sees entrance's offset", func() bool {
		for _, mb := range ref.a.venue.State().Members {
			if mb.Box == "entrance" && mb.OffsetMS != nil && math.Abs(*mb.OffsetMS-80) <= 5 {
				return true
			}
		}
		return false
	})
	resp, err := http.Get("http://" + off.a.httpLn.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var got float64
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, "fieldkit_venue_clock_offset_seconds "); ok {
			fmt.Sscan(v, &got)
		}
	}
	if math.Abs(got-0.080) > 0.005 {
		t.Fatalf("fieldkit_venue_clock_offset_seconds = %v, want about 0.080", got)
	}
}

func deref(f *float64) any {
	if f == nil {
		return nil
	}
	return *f
}

// getVenueJSON is GET url decoded into v, failing on any status but 200.
func getVenueJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %s", url, resp.Status, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// venueOf reads a running agent's GET /api/venue.
func venueOf(t *testing.T, p *agentProc) venue.State {
	t.Helper()
	var st venue.State
	getVenueJSON(t, "http://"+p.http+"/api/venue", &st)
	return st
}

func partState(t *testing.T, p *agentProc, name string) health.Part {
	t.Helper()
	for _, pt := range p.status(t).Parts {
		if pt.Name == name {
			return pt
		}
	}
	return health.Part{}
}

// Three agent binaries, each its own process and data dir, on one
// Mosquitto: each lists the three; a venue scene fired on any of them
// starts on all three together (spread of the actual starts, p99 over 100
// fires, at most 5 ms); a fourth started with a box id that is taken is
// refused, and both boxes with that id say so, naming the other.
func TestVenueRealAgents(t *testing.T) {
	m := mqtttest.StartMosquitto(t)
	sc := t.TempDir()
	if err := os.WriteFile(filepath.Join(sc, "open.yaml"), []byte(venueScene), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := func(box, extra string) string {
		return writeConfig(t, fmt.Sprintf("box: %s\nboard: sim\nmqtt: {url: %q}\nscenes: {dir: %s}\noutputs:\n  cue_lamp: {kind: gpio, pin: cue_lamp}\n"+
			"venue: {id: hall-a, role: zone-%s%s}\n", box, m.URL(), sc, box, extra))
	}
	boxes := map[string]*agentProc{}
	for _, b := range []string{"stage", "pickup", "entrance"} {
		extra := ""
		if b == "stage" {
			extra = ", reference: true"
		}
		boxes[b] = startAgent(t, nil, "--config", conf(b, extra))
	}
	for name, p := range boxes {
		p.waitHealthy(t, 15*time.Second)
		testutil.WaitFor(t, 20*time.Second, name+" lists the three boxes online", func() bool {
			st := venueOf(t, p)
			return len(online(st)) == 3 && st.Reference == "stage"
		})
	}
	// 100 venue fires over HTTP, from each box in turn: the spread of
	// the three processes' actual starts of the cue.
	order := []*agentProc{boxes["stage"], boxes["pickup"], boxes["entrance"]}
	const fires = 100
	spreads := fireLoop(t, fires, func(i int) { postRun(t, order[i%3].http) }, func() []*scenes.RunRecord {
		var out []*scenes.RunRecord
		for _, p := range order {
			var d scenes.Detail
			getVenueJSON(t, "http://"+p.http+"/api/scenes/open", &d)
			out = append(out, d.LastRun)
		}
		return out
	})
	slices.Sort(spreads)
	p50, p99 := spreads[len(spreads)/2], spreads[len(spreads)*99/100-1]
	t.Logf("venue fire landing spread over %d fires on 3 agent processes: p50 %v, p99 %v, max %v", fires, p50, p99, spreads[len(spreads)-1])
	if p99 > 5*time.Millisecond {
		t.Fatalf("spread of the actual starts p99 %v > 5ms", p99)
	}

	var pickupNonce string
	for _, mb := range venueOf(t, boxes["stage"]).Members {
		if mb.Box == "pickup" {
			pickupNonce = mb.Instance
		}
	}
	if pickupNonce == "" {
		t.Fatal("stage does not know pickup's instance")
	}

	dup := startAgent(t, nil, "--config", conf("pickup", ""))
	dup.waitHealthy(t, 15*time.Second)
	var dupNonce string
	testutil.WaitFor(t, 20*time.Second, "the second pickup refused, naming the first", func() bool {
		st := venueOf(t, dup)
		if st.Duplicate == nil || !st.Duplicate.Refused || st.Duplicate.Other.ID != pickupNonce || st.Connected {
			return false
		}
		pt := partState(t, dup, "venue")
		return pt.State == health.Failed && strings.Contains(pt.Reason, pickupNonce)
	})
	testutil.WaitFor(t, 20*time.Second, "the first pickup says another box uses its id", func() bool {
		st := venueOf(t, boxes["pickup"])
		if st.Duplicate == nil || st.Duplicate.Refused || st.Duplicate.Other.ID == pickupNonce {
			return false
		}
		dupNonce = st.Duplicate.Other.ID
		pt := partState(t, boxes["pickup"], "venue")
		return pt.State == health.Failed && strings.Contains(pt.Reason, dupNonce)
	})
	// The venue still has three boxes: the refused one never joined.
	if st := venueOf(t, boxes["entrance"]); len(online(st)) != 3 {
		t.Fatalf("entrance lists %v online", online(st))
	}

	// What the crews see: on entrance's page the three boxes with their
	// state and clock; on the first pickup's, the duplicate as an alert.
	ctx, plog := browser(t, phone)
	step(t, ctx, "open entrance's page", chromedp.Navigate("http://"+boxes["entrance"].http+"/"))
	waitJS(t, ctx, "the venue's three boxes", `(() => { const s = document.getElementById("venue");
  const li = [...document.querySelectorAll("#venue-list li[data-online=true]")];
  return !s.hidden && li.length === 3 && document.getElementById("venue-name").textContent.includes("time reference stage") &&
    li.some((x) => x.dataset.box === "stage" && x.innerText.includes("time reference")) &&
    li.some((x) => x.dataset.box === "entrance" && x.innerText.includes("this box") && /clock [+-]?[0-9.]+ ms/.test(x.innerText)); })()`)
	step(t, ctx, "open the first pickup's page", chromedp.Navigate("http://"+boxes["pickup"].http+"/"))
	waitJS(t, ctx, "the duplicate on the page", `(() => { const e = document.getElementById("venue-error");
  const a = [...document.querySelectorAll("#alerts li")].map((li) => li.innerText);
  return !e.hidden && e.textContent.includes("used twice") && a.some((x) => x.includes("Venue hall-a") && x.includes("`+dupNonce+`")); })()`)
	noCSPViolations(t, ctx, plog)
}

// The README's venue section is a config the agent takes.
func TestReadmeVenueConfig(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(readme), "```yaml\nvenue:\n")
	if !ok {
		t.Fatal("README lost its venue: example")
	}
	block, _, _ = strings.Cut(block, "```")
	cfg, err := config.Parse("README.md", []byte("box: stage\nvenue:\n"+block))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Venue == nil || cfg.Venue.ID != "hall-a" || !cfg.Venue.Reference || cfg.Venue.Lead != 200*time.Millisecond {
		t.Fatalf("README venue config decoded as %+v", cfg.Venue)
	}
	if _, err := config.Parse("x.yaml", []byte("box: stage\nvenue: {id: hall-a, leed: 1s}\n")); err == nil || !strings.Contains(err.Error(), "x.yaml:2") {
		t.Fatalf("a misspelt venue key: %v", err)
	}
}

// postRun fires the scene open over HTTP on the agent at addr.
func postRun(t *testing.T, addr string) {
	t.Helper()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Post("http://"+addr+"/api/scenes/open/run", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || !strings.Contains(string(body), "relayed") {
		t.Fatalf("POST run: %s %s", resp.Status, body)
	}
}

// fireLoop fires n venue fires (fire(i) sends the i-th) and waits until
// each has run on every box (runs reads each box's last run of the
// scene), with one start instant and none late; it returns each fire's
// spread: the last box's actual start minus the first's.
func fireLoop(t *testing.T, n int, fire func(i int), runs func() []*scenes.RunRecord) []time.Duration {
	t.Helper()
	spreads := make([]time.Duration, 0, n)
	var prev time.Time
	for i := range n {
		fire(i)
		var actual []time.Time
		var at time.Time
		var last []*scenes.RunRecord
		testutil.WaitFor(t, 10*time.Second, fmt.Sprintf("fire %d on every box", i), func() bool {
			actual, at = actual[:0], time.Time{}
			last = runs()
			for _, r := range last {
				if r == nil || r.StartAt == nil || !r.StartAt.After(prev) || len(r.Steps) == 0 || r.Steps[0].Actual == nil {
					return false
				}
				if !at.IsZero() && !r.StartAt.Equal(at) {
					return false
				}
				at = *r.StartAt
				actual = append(actual, *r.Steps[0].Actual)
			}
			return true
		})
		for k, r := range last {
			if r.StartLateUS != nil {
				t.Fatalf("fire %d came %v µs late on box %d with a 200 ms lead", i, *r.StartLateUS, k)
			}
		}
		prev = at
		first, lastStart := slices.MinFunc(actual, time.Time.Compare), slices.MaxFunc(actual, time.Time.Compare)
		spreads = append(spreads, lastStart.Sub(first))
	}
	return spreads
}
