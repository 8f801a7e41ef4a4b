package main

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// Rehearsal mode on the crew page, in Chromium: the crew starts it from
// the page, the striped banner and the frame show at once and stay at
// the top; the crew cannot end it (the page says the admin must); the
// admin ends it and the banner goes. All under the page's own CSP.
func TestBrowserRehearsalBanner(t *testing.T) {
	ctx, plog := browser(t, laptop)
	p, dataDir := startSecured(t, showConfig(t, demoBattery))
	crew, admin := readTokens(t, dataDir)
	base := "http://" + p.http

	step(t, ctx, "log in with the crew token",
		chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), crew),
		chromedp.SendKeys(chromedp.CSS("#name"), "Ana"),
		chromedp.Click(chromedp.CSS("#login")),
		chromedp.WaitVisible(chromedp.CSS("#gate")))
	waitJS(t, ctx, "the live stream", `document.getElementById("stream").textContent === "live"`)
	waitJS(t, ctx, "selling for real", `document.getElementById("rehearsal-state").textContent.startsWith("selling for real")`)
	if on, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.body.classList.contains("rehearsal") || !document.getElementById("rehearsal-banner").hidden`)); on {
		t.Fatal("the rehearsal banner shows on a box selling for real")
	}

	// The page asks before switching; answer yes.
	step(t, ctx, "start a rehearsal",
		chromedp.Evaluate[chromedp.Void](`window.confirm = () => true`),
		chromedp.Click(chromedp.CSS("#setup > summary")),
		chromedp.Click(chromedp.CSS("#rehearsal-on")))
	waitJS(t, ctx, "the rehearsal banner", `(() => {
  const b = document.getElementById("rehearsal-banner"), r = b.getBoundingClientRect();
  return !b.hidden && r.height > 20 && r.top === 0 && b.innerText.startsWith("REHEARSAL") &&
    document.body.classList.contains("rehearsal") && getComputedStyle(document.body).outlineStyle === "solid";
})()`)
	if a := call(t, "GET", base+"/api/rehearsal", crew); a.code != 200 || !strings.Contains(a.body, `"rehearsal": true`) || !strings.Contains(a.body, `"by": "Ana"`) {
		t.Fatalf("after the page switched: %d %s", a.code, a.body)
	}
	// Scrolled down, the banner is still on top.
	step(t, ctx, "scroll down", chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, document.body.scrollHeight)`))
	waitJS(t, ctx, "the banner still at the top", `document.getElementById("rehearsal-banner").getBoundingClientRect().top === 0`)

	// The crew cannot end it.
	step(t, ctx, "try to end the rehearsal as crew", chromedp.Click(chromedp.CSS("#rehearsal-off")))
	waitJS(t, ctx, "the refusal", `!document.getElementById("toast").hidden && document.getElementById("toast").textContent.includes("admin")`)
	if a := call(t, "GET", base+"/api/rehearsal", crew); !strings.Contains(a.body, `"rehearsal": true`) {
		t.Fatalf("the crew ended the rehearsal: %s", a.body)
	}

	// The admin ends it; the page follows.
	if a := call(t, "POST", base+"/api/rehearsal/off", admin); a.code != 200 {
		t.Fatalf("admin ending the rehearsal: %d %s", a.code, a.body)
	}
	waitJS(t, ctx, "the banner gone", `document.getElementById("rehearsal-banner").hidden && !document.body.classList.contains("rehearsal")`)
	saveScreenshot(t, ctx, "-rehearsal", false)
	noCSPViolations(t, ctx, plog)
}
