package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
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

// The crew page in a real browser: a wrong token is refused and changes
// nothing; the right one shows the live status; a crew member signs a
// pre-show item off and the gate and page follow.
func TestBrowserCrewPage(t *testing.T) {
	ctx, consoleErrors := browser(t)
	p, dataDir := startSecured(t, "preflight:\n  allow_warn: true\n  items:\n    - {id: creator, label: Creator confirmed, owner: producer}\n    - {id: coupons, label: Coupons staged, owner: host}\n")
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
