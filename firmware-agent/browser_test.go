package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"fieldkit/internal/mqtttest"
)

var screenshot = flag.String("screenshot", "", "save screenshots of the crew page: FILE (laptop), and beside it FILE-phone, -stale and -demo (e.g. ../docs/crew-page.png)")

// chromium finds the browser: $FIELDKIT_CHROMIUM, else Debian's
// chromium on PATH. The test fails when it is missing: the browser test
// is the proof that the page works.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("FIELDKIT_CHROMIUM"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("FIELDKIT_CHROMIUM=%s: %v", p, err)
		}
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("chromium not found: the crew-page browser test needs it (apt-get install -y chromium)")
	return ""
}

// Viewports the page is tried at: a 390 px phone and a laptop.
var (
	phone  = [2]int64{390, 844}
	laptop = [2]int64{1280, 900}
)

// cspProbe runs in every document before the page's own script and counts
// Content-Security-Policy violations as the page itself sees them.
const cspProbe = `window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => window.__csp.push(e.violatedDirective + " " + (e.blockedURI || "inline") + " " + (e.sourceFile || "") + ":" + e.lineNumber));`

// pageLog is what the browser said about the page: uncaught exceptions
// and Content-Security-Policy violations it logged.
type pageLog struct {
	mu         sync.Mutex
	exceptions []string
	csp        []string
}

func (l *pageLog) errors() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.exceptions...)
}

func (l *pageLog) cspMessages() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.csp...)
}

// browser starts a fresh headless chromium for t with a viewport of size
// and returns its context (one tab) and the page's log.
func browser(t *testing.T, size [2]int64) (context.Context, *pageLog) {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium(t)),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(int(size[0]), int(size[1])),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelC(); cancelA() })
	// Start the browser with no deadline (a deadline on the first run
	// would bound the browser's life).
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: cspProbe}); err != nil {
		t.Fatalf("installing the CSP probe: %v", err)
	}
	setViewport(t, ctx, size)
	l := &pageLog{}
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			l.mu.Lock()
			// Exceptions are the script's bugs; console errors such as
			// "Failed to load resource: 401" are the login working.
			if m.IsException() {
				l.exceptions = append(l.exceptions, m.String())
			}
			if strings.Contains(m.Text, "Content Security Policy") {
				l.csp = append(l.csp, m.String())
			}
			l.mu.Unlock()
		}
	}()
	return ctx, l
}

// setViewport makes the tab size[0]×size[1] CSS pixels (a phone is also
// emulated as a touch device).
func setViewport(t *testing.T, ctx context.Context, size [2]int64) {
	t.Helper()
	var opts []chromedp.EmulateViewportOption
	if size == phone {
		opts = append(opts, chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulateScale(2))
	}
	step(t, ctx, fmt.Sprintf("viewport %dx%d", size[0], size[1]), chromedp.EmulateViewport(size[0], size[1], opts...))
}

// noCSPViolations fails t when the page or the browser saw a violation of
// the page's own Content-Security-Policy.
func noCSPViolations(t *testing.T, ctx context.Context, l *pageLog) {
	t.Helper()
	seen, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`window.__csp || ["the CSP probe did not run"]`))
	if err != nil {
		t.Fatal(err)
	}
	if logged := l.cspMessages(); len(seen) > 0 || len(logged) > 0 {
		t.Fatalf("Content-Security-Policy violations: %d seen by the page, %d logged:\n%s\n%s",
			len(seen), len(logged), strings.Join(seen, "\n"), strings.Join(logged, "\n"))
	}
	if errs := l.errors(); len(errs) > 0 {
		t.Fatalf("the page logged errors:\n%s", strings.Join(errs, "\n"))
	}
}

// saveScreenshot writes the viewport (or the full page) to *screenshot
// with suffix before .png, when -screenshot is given.
func saveScreenshot(t *testing.T, ctx context.Context, suffix string, full bool) {
	t.Helper()
	if *screenshot == "" {
		return
	}
	var png []byte
	var err error
	if full {
		png, err = chromedp.Run(ctx, chromedp.FullScreenshot(100))
	} else {
		png, err = chromedp.Run(ctx, chromedp.CaptureScreenshot())
	}
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimSuffix(*screenshot, ".png") + suffix + ".png"
	if err := os.WriteFile(name, png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// step runs actions with a deadline and fails the test with what.
func step(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(sctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// waitJS waits until the expression is true on the page.
func waitJS(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if _, err := chromedp.Run(sctx, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(15*time.Second))); err != nil {
		body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText.slice(0, 3000) : ""`))
		t.Fatalf("waiting for %s (%s): %v\npage text:\n%s", what, expr, err, body)
	}
}

func jsString(s string) string { return fmt.Sprintf("%q", s) }

// demoBattery is the demo's pack, as a config section.
const demoBattery = `batteries:
  - name: demo-pack
    source: sim
    preset: vmount-14v
    start_percent: 40
    drain: 50m
    thresholds: {warn_tte: 0s, critical_tte: 0s, swap_tte: 0s}
`

// showConfig is a show's config: the demo's outputs, the batteries
// section given, the demo scenes and a short lamp test, two manual
// pre-show items.
func showConfig(t *testing.T, batteries string) string {
	t.Helper()
	dir := t.TempDir()
	files, err := filepath.Glob("../scenes/demo/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("demo scenes: %v %v", files, err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	lamp := "name: lamp-test\ndescription: Cue lamp on for two seconds\nsteps:\n" +
		"  - {at: 0s, target: cue_lamp, do: \"on\"}\n  - {at: 2s, target: cue_lamp, do: \"off\"}\n"
	if err := os.WriteFile(filepath.Join(dir, "lamp-test.yaml"), []byte(lamp), 0o644); err != nil {
		t.Fatal(err)
	}
	return `outputs:
  cue_lamp:     {kind: gpio, pin: cue_lamp}
  motor:        {kind: pwm, pin: motor}
  strip:        {kind: ws2812, spi: "0.0", leds: 30}
  wled_stage:   {kind: wled, topic: wled/stage}
  tasmota_spot: {kind: tasmota, topic: stage-spot}
  presenter:    {kind: wearable, id: presenter, fallback: cue_lamp}
printers:
  counter: {language: escpos, transport: fake, width_dots: 576}
` + batteries + `scenes:
  dir: ` + dir + `
preflight:
  allow_warn: true
  items:
    - {id: creator, label: Creator confirmed, owner: producer}
    - {id: coupons, label: Coupons staged, owner: host}
`
}

// waitPin polls /api/status until the sim pin named name has level.
func waitPin(t *testing.T, p *agentProc, crew, name string, level bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		a := call(t, "GET", "http://"+p.http+"/api/status", crew)
		var s struct {
			Board struct {
				State struct {
					Pins []struct {
						Names []string `json:"names"`
						Level bool     `json:"level"`
					} `json:"pins"`
				} `json:"state"`
			} `json:"board"`
		}
		if err := json.Unmarshal([]byte(a.body), &s); err != nil {
			t.Fatalf("status: %v\n%s", err, a.body)
		}
		for _, pin := range s.Board.State.Pins {
			if slices.Contains(pin.Names, name) {
				last = fmt.Sprint(pin.Level)
				if pin.Level == level {
					return
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("sim pin %s never reached level %v in /api/status (last %q)", name, level, last)
}

// The crew page in a real browser at laptop size: a wrong token is
// refused and changes nothing; the right one shows the live status; a
// crew member signs the pre-show items off and the gate follows; scenes
// run and cancel; the printer queue shows orders by number and buyer.
func TestBrowserCrewPage(t *testing.T) {
	ctx, plog := browser(t, laptop)
	p, dataDir := startSecured(t, showConfig(t, demoBattery))
	crew, _ := readTokens(t, dataDir)
	base := "http://" + p.http

	// Not logged in: the page sends us to the login form.
	step(t, ctx, "open the page", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("#token")))
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	if !strings.HasSuffix(loc, "/login") {
		t.Fatalf("without a session the page is at %s, want /login", loc)
	}

	// A wrong token: 401, the form says so, and nothing changed.
	step(t, ctx, "log in with a wrong token",
		chromedp.SendKeys(chromedp.CSS("#token"), "not-the-token"),
		chromedp.SendKeys(chromedp.CSS("#name"), "Ana"),
		chromedp.Click(chromedp.CSS("#login")),
		chromedp.WaitVisible(chromedp.CSS("#login-error")))
	if msg, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#login-error"))); !strings.Contains(msg, "not the crew or admin token") {
		t.Fatalf("login error says %q", msg)
	}
	if a := call(t, "GET", base+"/api/status", "not-the-token"); a.code != 401 {
		t.Fatalf("wrong bearer token: %d", a.code)
	}
	if a := call(t, "POST", base+"/api/preflight/reset", "not-the-token"); a.code != 401 {
		t.Fatalf("wrong token on a state change: %d", a.code)
	}
	if a := call(t, "GET", base+"/api/preflight/state", crew); strings.Contains(a.body, "signed_by") {
		t.Fatalf("a sign-off exists after a refused login:\n%s", a.body)
	}

	// The crew token: the page shows the box, live.
	step(t, ctx, "log in with the crew token",
		chromedp.Clear(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), crew),
		chromedp.Click(chromedp.CSS("#login")),
		chromedp.WaitVisible(chromedp.CSS("#gate")))
	waitJS(t, ctx, "the live stream", `document.getElementById("stream").textContent === "live"`)
	waitJS(t, ctx, "the box name", `document.getElementById("box").textContent === "show1"`)
	waitJS(t, ctx, "the broker link", `document.getElementById("mqtt-link").textContent === "MQTT connected"`)
	waitJS(t, ctx, "the board", `document.getElementById("board").textContent.startsWith("sim")`)
	waitJS(t, ctx, "the pre-show checks", `document.querySelector('#checks li[data-check="broker"] .badge.ok') !== null`)
	waitJS(t, ctx, "who is logged in", `document.getElementById("me").textContent === "Ana · crew"`)
	if b, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById("open-banner") === null`)); !b {
		t.Fatal("the open-demo banner shows although tokens are required")
	}
	waitJS(t, ctx, "the gate naming the sign-offs", `document.getElementById("gate").textContent.includes("Creator confirmed")`)

	// The pre-show check is one tap away: the gate opens it.
	step(t, ctx, "tap the gate", chromedp.Click(chromedp.CSS("#gate")))
	waitJS(t, ctx, "the pre-show check open", `document.getElementById("preflight").open`)

	// Sign both items off on the page: the page shows who, the gate opens.
	for _, item := range []string{"creator", "coupons"} {
		sel := `#manual li[data-item=` + jsString(item) + `] button.signoff`
		step(t, ctx, "sign off "+item, chromedp.Click(chromedp.CSS(sel)))
		waitJS(t, ctx, item+" signed off on the page",
			`(document.querySelector('#manual li[data-item=`+jsString(item)+`]')||{}).innerText?.includes("signed off by Ana")`)
	}
	a := call(t, "GET", base+"/api/preflight/state", crew)
	if strings.Count(a.body, `"signed_by": "Ana"`) != 2 {
		t.Fatalf("API after the page's sign-offs:\n%s", a.body)
	}
	if strings.Contains(a.body, `"open": true`) {
		waitJS(t, ctx, "the gate to open on the page", `document.getElementById("gate").className === "gate go"`)
	} else {
		waitJS(t, ctx, "the gate to say hold", `document.getElementById("gate").className === "gate hold"`)
	}
	step(t, ctx, "close the pre-show check", chromedp.Click(chromedp.CSS("#gate")))

	// A scene button: the page shows it running, the sim board's pin
	// goes high in /api/status, then the scene is done and the pin low.
	lamp := `document.querySelector('#scene-list li[data-scene="lamp-test"]')`
	waitJS(t, ctx, "the scene list", lamp+` !== null`)
	step(t, ctx, "press Run", chromedp.Click(chromedp.CSS(`#scene-list li[data-scene="lamp-test"] button.run`)))
	waitJS(t, ctx, "the scene running on the page", lamp+`.querySelector(".scene-state").textContent.startsWith("running")`)
	waitPin(t, p, crew, "cue_lamp", true)
	waitJS(t, ctx, "the scene done on the page", lamp+`.querySelector(".scene-state").textContent === "done"`)
	waitPin(t, p, crew, "cue_lamp", false)

	// Cancel: a long scene runs, the Cancel button stops it.
	long := `document.querySelector('#scene-list li[data-scene="drop-countdown"]')`
	step(t, ctx, "run the countdown", chromedp.Click(chromedp.CSS(`#scene-list li[data-scene="drop-countdown"] button.run`)))
	waitJS(t, ctx, "the countdown running", long+`.querySelector(".scene-state").textContent.startsWith("running")`)
	waitJS(t, ctx, "Cancel enabled", `!`+long+`.querySelector("button.cancel").disabled`)
	step(t, ctx, "press Cancel", chromedp.Click(chromedp.CSS(`#scene-list li[data-scene="drop-countdown"] button.cancel`)))
	waitJS(t, ctx, "the countdown cancelled", long+`.querySelector(".scene-state").textContent === "cancelled"`)

	// The battery gauge is on the page with its time to empty.
	waitJS(t, ctx, "the battery gauge", `(document.querySelector('#battery-list li[data-rig="demo-pack"]')||{}).innerText?.includes("time left")`)

	// Pickup labels: the pickup desk finds an order by its number, with
	// the buyer's name, or "discreet" when the buyer asked for it.
	postJob(t, base, crew, `{"pickup":{"order":"A-1042","buyer":"Mara K.","items":[{"qty":1,"name":"Tote bag","price":2500}],"currency":"EUR"}}`)
	postJob(t, base, crew, `{"pickup":{"order":"A-1043","buyer":"Jon","discreet":true}}`)
	job := `#printer-list [data-printer="counter"] li[data-job="A-1042"]`
	waitJS(t, ctx, "order A-1042 printed in the queue", `(document.querySelector('`+job+`[data-state="done"]')||{}).innerText?.includes("Order A-1042")`)
	waitJS(t, ctx, "the buyer of A-1042", `document.querySelector('`+job+`').innerText.includes("Mara K.")`)
	waitJS(t, ctx, "A-1043 discreet", `(document.querySelector('#printer-list li[data-job="A-1043"]')||{}).innerText?.includes("discreet")`)
	if txt, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('#printer-list').innerText`)); strings.Contains(txt, "Jon") {
		t.Fatalf("a discreet buyer's name is on the page:\n%s", txt)
	}
	// A character no printer font or bitmap font has is printed as "?",
	// and the pickup desk sees that on the job, not only in the API.
	postJob(t, base, crew, `{"pickup":{"order":"A-1044","buyer":"Kim","items":[{"qty":1,"name":"Gift \ud83c\udf81","price":900}],"currency":"EUR"}}`)
	waitJS(t, ctx, "A-1044's warning on the page", `(document.querySelector('#printer-list li[data-job="A-1044"] .job-warn')||{}).innerText?.includes("printed as ?")`)
	// Reprint on the page queues a second print of it, and both show.
	step(t, ctx, "press Reprint", chromedp.Click(chromedp.CSS(job+` button.reprint`)))
	waitJS(t, ctx, "the reprint in the queue", `[...document.querySelectorAll('#printer-list [data-printer="counter"] li[data-job]')].some(li => li.innerText.includes("reprint of A-1042") && li.innerText.includes("Order A-1042"))`)
	a = call(t, "GET", base+"/api/printers/counter/jobs", crew)
	if strings.Count(a.body, `"reprint_of": "A-1042"`) != 1 {
		t.Fatalf("jobs after one Reprint:\n%s", a.body)
	}
	// The wrong token cannot reprint.
	if w := call(t, "POST", base+"/api/jobs/A-1042/reprint", crew+"x"); w.code != 401 {
		t.Fatalf("reprint with a wrong token: %d", w.code)
	}
	if a2 := call(t, "GET", base+"/api/printers/counter/jobs", crew); strings.Count(a2.body, `"reprint_of"`) != 1 {
		t.Fatalf("a refused reprint changed the queue:\n%s", a2.body)
	}

	saveScreenshot(t, ctx, "", true)
	noCSPViolations(t, ctx, plog)
}

func postJob(t *testing.T, base, token, body string) {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/api/printers/counter/jobs", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("queueing a label: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("queueing a label: %s\n%s", resp.Status, b)
	}
}

// gaugeBatteries are three simulated packs at 2, 50 and 95 % that drain
// over a day, so their charge holds still while the test measures.
const gaugeBatteries = `batteries:
  - {name: pack-02, source: sim, preset: vmount-14v, start_percent: 2, drain: 24h}
  - {name: pack-50, source: sim, preset: vmount-14v, start_percent: 50, drain: 24h}
  - {name: pack-95, source: sim, preset: vmount-14v, start_percent: 95, drain: 24h}
`

// startOpen runs the agent on loopback with no tokens (the open demo's
// mode) and the show config with the given batteries.
func startOpen(t *testing.T, batteries string) *agentProc {
	t.Helper()
	cfg := writeConfig(t, "box: show1\nboard: sim\n"+showConfig(t, batteries))
	p := startAgent(t, nil, "--config", cfg, "--mqtt-listen", mqtttest.FreePort(t))
	p.waitHealthy(t, 10*time.Second)
	return p
}

// gauge is one battery as the API gives it and as the page draws it.
type gauge struct {
	Rig   string  `json:"rig"`
	Shown float64 `json:"shown"` // the percent the row says
	Drawn float64 `json:"drawn"` // bar width / gauge width × 100
}

const readGauges = `[...document.querySelectorAll("#battery-list li[data-rig]")].map((li) => {
  const g = li.querySelector("svg.gauge").getBoundingClientRect(), b = li.querySelector("svg.gauge .bar").getBoundingClientRect();
  return {rig: li.dataset.rig, shown: parseFloat(li.dataset.percent), drawn: g.width ? b.width / g.width * 100 : -1};
})`

// On a 390×844 phone: the show comes first. The go-live gate is one line,
// every scene's Run button is on the first screen and runs without a
// scroll, what needs a hand is under them, and the pre-show check is one
// tap away. Each battery gauge is drawn as wide as its charge (2, 50 and
// 95 %), at phone and laptop size, and the page breaks none of its own
// Content-Security-Policy.
func TestBrowserPhoneShowView(t *testing.T) {
	ctx, plog := browser(t, phone)
	p := startOpen(t, gaugeBatteries)
	base := "http://" + p.http

	step(t, ctx, "open the page", chromedp.Navigate(base+"/"))
	waitJS(t, ctx, "the live stream", `document.getElementById("stream").textContent === "live"`)
	waitJS(t, ctx, "the scene list", `document.querySelectorAll("#scene-list li[data-scene]").length === 4`)
	waitJS(t, ctx, "the gate", `document.getElementById("gate").className.startsWith("gate hold")`)
	waitJS(t, ctx, "the alerts", `document.querySelector('#alerts li[data-alert]') !== null`)
	saveScreenshot(t, ctx, "-phone", false)

	type box struct{ Top, Bottom, Left, Right, Height float64 }
	type layout struct {
		InnerW, InnerH, ScrollW, ScrollY float64
		LineH                            float64
		Gate                             box
		Runs                             []box
		AlertsTop                        float64
		PreflightTop                     float64
	}
	lay, err := chromedp.Run(ctx, chromedp.Evaluate[layout](`(() => {
  const r = (e) => { const b = e.getBoundingClientRect(); return {Top: b.top, Bottom: b.bottom, Left: b.left, Right: b.right, Height: b.height}; };
  const g = document.getElementById("gate");
  return {InnerW: innerWidth, InnerH: innerHeight, ScrollW: document.documentElement.scrollWidth, ScrollY: scrollY,
    LineH: parseFloat(getComputedStyle(g).lineHeight) || parseFloat(getComputedStyle(g).fontSize) * 1.4,
    Gate: r(g), Runs: [...document.querySelectorAll("#scene-list button.run")].map(r),
    AlertsTop: document.getElementById("alerts").getBoundingClientRect().top,
    PreflightTop: document.getElementById("preflight").getBoundingClientRect().top};
})()`))
	if err != nil {
		t.Fatal(err)
	}
	if lay.InnerW != float64(phone[0]) || lay.InnerH != float64(phone[1]) {
		t.Fatalf("viewport %vx%v, want %dx%d", lay.InnerW, lay.InnerH, phone[0], phone[1])
	}
	if lay.ScrollW > lay.InnerW {
		t.Errorf("the page is %v px wide on a %v px phone: it scrolls sideways", lay.ScrollW, lay.InnerW)
	}
	// One line: no taller than one line of its text plus its padding.
	if lay.Gate.Height > 2*lay.LineH || lay.Gate.Top > 150 {
		t.Errorf("the gate is %v px high (line %v px) at %v px from the top; want one line near the top", lay.Gate.Height, lay.LineH, lay.Gate.Top)
	}
	if len(lay.Runs) != 4 {
		t.Fatalf("%d Run buttons", len(lay.Runs))
	}
	for i, b := range lay.Runs {
		if b.Top < lay.Gate.Bottom || b.Bottom > lay.InnerH || b.Right > lay.InnerW || b.Height < 44 {
			t.Errorf("Run button %d at %+v: want it under the gate, on the first %vx%v screen, at least 44 px high (a thumb)", i, b, lay.InnerW, lay.InnerH)
		}
	}
	if lay.AlertsTop < lay.Runs[3].Bottom || lay.PreflightTop < lay.AlertsTop {
		t.Errorf("order on the phone: alerts at %v, last scene ends %v, pre-show check at %v; want scenes, alerts, then the check", lay.AlertsTop, lay.Runs[3].Bottom, lay.PreflightTop)
	}
	if open, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById("preflight").open`)); open {
		t.Error("the pre-show check is open on the first screen; it belongs one tap away")
	}

	// Run a scene from the first screen: a tap where the button is, with
	// no scroll before or after.
	runLamp := `document.querySelector('#scene-list li[data-scene="lamp-test"] button.run')`
	bx, err := chromedp.Run(ctx, chromedp.Evaluate[box](`(() => { const b = `+runLamp+`.getBoundingClientRect(); return {Top: b.top, Bottom: b.bottom, Left: b.left, Right: b.right}; })()`))
	if err != nil {
		t.Fatal(err)
	}
	step(t, ctx, "tap Run on lamp-test", chromedp.MouseClickXY((bx.Left+bx.Right)/2, (bx.Top+bx.Bottom)/2))
	waitJS(t, ctx, "lamp-test running or done", `['running','done'].some((s) => document.querySelector('#scene-list li[data-scene="lamp-test"] .scene-state').textContent.startsWith(s))`)
	if y, _ := chromedp.Run(ctx, chromedp.Evaluate[float64](`scrollY`)); y != 0 {
		t.Errorf("the page scrolled to %v to run a scene", y)
	}

	// The pre-show check is one tap away.
	gb, _ := chromedp.Run(ctx, chromedp.Evaluate[box](`(() => { const b = document.getElementById("gate").getBoundingClientRect(); return {Top: b.top, Bottom: b.bottom, Left: b.left, Right: b.right}; })()`))
	step(t, ctx, "tap the gate", chromedp.MouseClickXY((gb.Left+gb.Right)/2, (gb.Top+gb.Bottom)/2))
	waitJS(t, ctx, "the pre-show check open", `document.getElementById("preflight").open && document.querySelector('#checks li[data-check="broker"]') !== null`)

	// Gauges at phone and laptop size.
	checkGauges(t, ctx, base, "phone")
	setViewport(t, ctx, laptop)
	checkGauges(t, ctx, base, "laptop")
	noCSPViolations(t, ctx, plog)

	// The probe counts for real: an inline style, as the old gauge used,
	// is blocked and seen.
	step(t, ctx, "set an inline style", chromedp.Evaluate[chromedp.Void](`document.querySelector("svg.gauge").parentElement.setAttribute("style", "width:40%")`))
	waitJS(t, ctx, "the probe to see the violation", `window.__csp.length === 1 && window.__csp[0].startsWith("style-src")`)
}

// checkGauges compares each gauge's drawn width with the charge the API
// reports for its pack.
func checkGauges(t *testing.T, ctx context.Context, base, size string) {
	t.Helper()
	waitJS(t, ctx, "three gauges", `document.querySelectorAll("#battery-list svg.gauge").length === 3`)
	var api struct {
		Batteries []struct {
			Rig     string   `json:"rig"`
			Percent *float64 `json:"percent"`
		} `json:"batteries"`
	}
	if err := json.Unmarshal([]byte(call(t, "GET", base+"/api/batteries", "").body), &api); err != nil {
		t.Fatal(err)
	}
	gs, err := chromedp.Run(ctx, chromedp.Evaluate[[]gauge](readGauges))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"pack-02": 2, "pack-50": 50, "pack-95": 95}
	for _, b := range api.Batteries {
		if b.Percent == nil {
			t.Fatalf("%s: no charge in the API", b.Rig)
		}
		// The sim packs start near their configured charge.
		if math.Abs(*b.Percent-want[b.Rig]) > 3 {
			t.Fatalf("%s: the API says %.1f %%, want about %v", b.Rig, *b.Percent, want[b.Rig])
		}
		var g *gauge
		for i := range gs {
			if gs[i].Rig == b.Rig {
				g = &gs[i]
			}
		}
		if g == nil {
			t.Fatalf("%s: no gauge on the page", b.Rig)
		}
		// The packs drain over a day: the API and the page agree to well
		// under a point, and the bar's width is the charge.
		if math.Abs(g.Shown-*b.Percent) > 0.5 || math.Abs(g.Drawn-*b.Percent) > 1 {
			t.Errorf("%s at %s size: API %.2f %%, page says %.2f %%, bar drawn %.2f %% of the gauge", b.Rig, size, *b.Percent, g.Shown, g.Drawn)
		}
		t.Logf("%s at %s size: API %.2f %%, bar drawn %.2f %%", b.Rig, size, *b.Percent, g.Drawn)
	}
}

// staleState reads what the page shows about the stream.
const staleState = `(() => {
  const on = [...document.querySelectorAll("main button")].filter((b) => !b.disabled).length;
  return {stale: document.body.classList.contains("stale"), banner: document.getElementById("stale").hidden ? "" : document.getElementById("stale").innerText,
    enabled: on, mqtt: document.getElementById("mqtt-link").textContent,
    grey: getComputedStyle(document.querySelector("main")).filter};
})()`

type pageStale struct {
	Stale   bool   `json:"stale"`
	Banner  string `json:"banner"`
	Enabled int    `json:"enabled"`
	MQTT    string `json:"mqtt"`
	Grey    string `json:"grey"`
}

// waitStale measures how long after lost the page shows, all at once,
// that it lost the agent: greyed out, every control disabled, and "agent
// unreachable since hh:mm:ss".
func waitStale(t *testing.T, ctx context.Context, lost time.Time, what string) time.Duration {
	t.Helper()
	deadline := lost.Add(10 * time.Second)
	var st pageStale
	for time.Now().Before(deadline) {
		var err error
		st, err = chromedp.Run(ctx, chromedp.Evaluate[pageStale](staleState))
		if err != nil {
			t.Fatal(err)
		}
		if st.Stale && st.Enabled == 0 && strings.Contains(st.Grey, "grayscale") &&
			staleRE.MatchString(st.Banner) && !strings.Contains(st.MQTT, "connected") {
			return time.Since(lost)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: the page did not show the stale state within 10 s: %+v", what, st)
	return 0
}

var staleRE = regexp.MustCompile(`Agent unreachable since \d\d:\d\d:\d\d`)

// The page tells the truth when the agent goes away: a hung agent (the
// connection stays open, nothing comes) and a stopped one both grey the
// page out, disable every control and say since when, within 3 s; when
// the agent answers again the page is live again.
func TestBrowserStaleWhenAgentGone(t *testing.T) {
	ctx, plog := browser(t, phone)
	p := startOpen(t, demoBattery)
	step(t, ctx, "open the page", chromedp.Navigate("http://"+p.http+"/"))
	waitJS(t, ctx, "the live page", `document.getElementById("stream").textContent === "live" && document.getElementById("mqtt-link").textContent === "MQTT connected" && document.querySelectorAll("#scene-list button.run").length === 4`)
	if st, _ := chromedp.Run(ctx, chromedp.Evaluate[pageStale](staleState)); st.Stale || st.Enabled == 0 {
		t.Fatalf("live page: %+v", st)
	}

	// Hung: the process stops answering, its socket stays open.
	if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	hung := time.Now()
	d := waitStale(t, ctx, hung, "hung agent")
	t.Logf("hung agent: stale after %v", d.Round(10*time.Millisecond))
	if d > 3*time.Second {
		t.Errorf("hung agent: the page showed it after %v, want within 3 s", d)
	}
	if err := p.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the page live again", `!document.body.classList.contains("stale") && document.getElementById("stale").hidden && document.getElementById("stream").textContent === "live" && !document.querySelector('#scene-list li[data-scene="lamp-test"] button.run').disabled`)

	// Stopped: the connection closes.
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	d = waitStale(t, ctx, stopped, "stopped agent")
	t.Logf("stopped agent: stale after %v", d.Round(10*time.Millisecond))
	if d > 3*time.Second {
		t.Errorf("stopped agent: the page showed it after %v, want within 3 s", d)
	}
	saveScreenshot(t, ctx, "-stale", false)
	noCSPViolations(t, ctx, plog)
}

// The demo's gate can go green by doing what the page says: it holds for
// the two sign-offs it names, and opens once a crew member signs both
// off on the page.
func TestBrowserDemoGoesLive(t *testing.T) {
	ctx, plog := browser(t, phone)
	p := startAgent(t, nil, "--mqtt-listen", mqtttest.FreePort(t))
	p.waitHealthy(t, 10*time.Second)
	step(t, ctx, "open the demo", chromedp.Navigate("http://"+p.http+"/"))
	// Once the demo has started (its broker connected), only the two
	// sign-offs hold the gate: things the page offers to do.
	waitJS(t, ctx, "the gate held by the sign-offs alone", `(() => { const g = document.getElementById("gate");
  const b = [...document.querySelectorAll("#gate-blocking li")].map((li) => li.textContent);
  return g.className === "gate hold" && g.textContent.includes("Creator confirmed") && g.textContent.includes("Coupons staged") &&
    b.length === 2 && b.every((x) => x.includes("not signed off")); })()`)
	step(t, ctx, "tap the gate", chromedp.Click(chromedp.CSS("#gate")))
	waitJS(t, ctx, "the sign-offs", `document.querySelectorAll("#manual button.signoff").length === 2`)
	step(t, ctx, "say who signs", chromedp.SetValue(chromedp.CSS("#who"), "Ana"))
	for _, item := range []string{"creator", "coupons"} {
		step(t, ctx, "sign off "+item, chromedp.Click(chromedp.CSS(`#manual li[data-item=`+jsString(item)+`] button.signoff`)))
		waitJS(t, ctx, item+" signed off", `(document.querySelector('#manual li[data-item=`+jsString(item)+`]')||{}).innerText?.includes("signed off by Ana")`)
	}
	waitJS(t, ctx, "the gate green", `document.getElementById("gate").className === "gate go" && document.getElementById("gate").textContent.startsWith("GO LIVE")`)
	step(t, ctx, "close the pre-show check", chromedp.Click(chromedp.CSS("#gate")), chromedp.Evaluate[chromedp.Void](`scrollTo(0, 0)`))
	saveScreenshot(t, ctx, "-demo", false)
	noCSPViolations(t, ctx, plog)
}
