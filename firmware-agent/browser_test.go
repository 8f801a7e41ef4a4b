package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

var screenshot = flag.String("screenshot", "", "save a screenshot of the crew page to this PNG file (e.g. ../docs/crew-page.png)")

// chromium finds Debian's chromium. The test fails when it is missing:
// the browser test is the proof that the page works.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("chromium not found: the crew-page browser test needs it (apt-get install -y chromium)")
	return ""
}

// browser starts a fresh headless chromium for t and returns its context
// (one tab) and the page's console errors as they come.
func browser(t *testing.T) (context.Context, func() []string) {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium(t)),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1200, 1500),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelC(); cancelA() })
	// Start the browser with no deadline (a deadline on the first run
	// would bound the browser's life).
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	var (
		mu   sync.Mutex
		errs []string
	)
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			// Exceptions are the script's bugs; console errors such as
			// "Failed to load resource: 401" are the login working.
			if m.IsException() {
				mu.Lock()
				errs = append(errs, m.String())
				mu.Unlock()
			}
		}
	}()
	return ctx, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), errs...)
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

// showConfig is a show's config: the demo's outputs and battery, the
// demo scenes and a short lamp test, two manual pre-show items.
func showConfig(t *testing.T) string {
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
batteries:
  - name: demo-pack
    source: sim
    preset: vmount-14v
    start_percent: 40
    drain: 20m
    thresholds: {warn_tte: 0s, critical_tte: 0s, swap_tte: 0s}
scenes:
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

// The crew page in a real browser: a wrong token is refused and changes
// nothing; the right one shows the live status; a crew member signs a
// pre-show item off and the gate and page follow.
func TestBrowserCrewPage(t *testing.T) {
	ctx, consoleErrors := browser(t)
	p, dataDir := startSecured(t, showConfig(t))
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

	// A pickup label prints; Reprint on the page queues a second print of
	// it, and both show in the queue.
	req, _ := http.NewRequest("POST", base+"/api/printers/counter/jobs",
		strings.NewReader(`{"id":"A-1042","label":{"elements":[{"text":"Order A-1042"},{"cut":true}]}}`))
	req.Header.Set("Authorization", "Bearer "+crew)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("queueing a label: %v %v", resp, err)
	}
	resp.Body.Close()
	job := `#printer-list [data-printer="counter"] li[data-job="A-1042"]`
	waitJS(t, ctx, "the printed job on the page", `document.querySelector('`+job+`[data-state="done"]') !== null`)
	step(t, ctx, "press Reprint", chromedp.Click(chromedp.CSS(job+` button.reprint`)))
	waitJS(t, ctx, "the reprint in the queue", `[...document.querySelectorAll('#printer-list [data-printer="counter"] li[data-job]')].some(li => li.innerText.includes("reprint of A-1042"))`)
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

	if *screenshot != "" {
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(*screenshot, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if errs := consoleErrors(); len(errs) > 0 {
		t.Fatalf("the page logged errors:\n%s", strings.Join(errs, "\n"))
	}
}
