package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

func init() { register("page-weight", benchPageWeight) }

// benchPageWeight runs the demo agent and loads the crew page in headless
// chromium with an empty cache: bytes transferred on first load (HTML,
// CSS, script; gzip as served), first contentful paint, and the time
// until the first live data (the status pushed over the event stream) is
// on screen. -cpu-throttle slows chromium's CPU as a phone would be.
func benchPageWeight(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("page-weight", flag.ContinueOnError)
	runs := fs.Int("runs", 5, "cold loads to time")
	throttle := fs.Float64("cpu-throttle", 4, "chromium CPU slowdown factor (1: none; 4: a mid-range phone)")
	bin := fs.String("bin", "", "a built firmware-agent (default: build one)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	browser, err := exec.LookPath("chromium")
	if err != nil {
		return fmt.Errorf("chromium not found (apt-get install -y chromium): %w", err)
	}
	dir, err := os.MkdirTemp("", "fieldkit-pageweight")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if *bin == "" {
		*bin = filepath.Join(dir, "firmware-agent")
		if out, err := exec.CommandContext(ctx, "go", "build", "-o", *bin, "./firmware-agent").CombinedOutput(); err != nil {
			return fmt.Errorf("build: %v\n%s", err, out)
		}
	}
	httpAddr, err := freeAddr()
	if err != nil {
		return err
	}
	mqttAddr, err := freeAddr()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, *bin, "run", "--data", filepath.Join(dir, "data"), "--http", httpAddr, "--mqtt-listen", mqttAddr)
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	base := "http://" + httpAddr
	if err := pageWaitOK(ctx, base+"/healthz", 10*time.Second); err != nil {
		return err
	}

	// What the server sends, measured at the HTTP level.
	var raw, gz int
	for _, p := range []string{"/", "/assets/app.css", "/assets/app.js"} {
		r, g, err := pageSizes(ctx, base+p)
		if err != nil {
			return err
		}
		raw += r
		gz += g
	}
	emit("page-weight", "first_load_raw_bytes", float64(raw), "bytes")
	emit("page-weight", "first_load_gzip_bytes", float64(gz), "bytes")

	var transfer float64
	var fcp, live []float64
	for i := 0; i < *runs; i++ {
		tb, f, l, err := pageColdLoad(ctx, browser, filepath.Join(dir, fmt.Sprint("profile", i)), base, *throttle)
		if err != nil {
			return err
		}
		transfer = tb
		fcp, live = append(fcp, f), append(live, l)
	}
	emit("page-weight", "browser_transfer_bytes", transfer, "bytes")
	emit("page-weight", "first_contentful_paint_p50_ms", pageMedian(fcp), "ms")
	emit("page-weight", "first_live_data_p50_ms", pageMedian(live), "ms")
	emit("page-weight", "cpu_throttle", *throttle, "x")
	return nil
}

func pageWaitOK(ctx context.Context, url string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s not 200 within %v", url, within)
}

// pageSizes returns the body size of url plain and gzip-encoded.
func pageSizes(ctx context.Context, url string) (raw, gz int, err error) {
	c := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	for _, enc := range []string{"identity", "gzip"} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		req.Header.Set("Accept-Encoding", enc)
		resp, err := c.Do(req)
		if err != nil {
			return 0, 0, err
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return 0, 0, err
		}
		if resp.StatusCode != http.StatusOK {
			return 0, 0, fmt.Errorf("%s: %s", url, resp.Status)
		}
		if enc == "gzip" {
			gz = len(b)
		} else {
			raw = len(b)
		}
	}
	return raw, gz, nil
}

// pageColdLoad opens the page in a fresh chromium profile and reads the
// browser's own performance timing.
func pageColdLoad(ctx context.Context, browser, profile, base string, throttle float64) (transfer, fcp, live float64, err error) {
	actx, cancelA := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(browser), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(profile), chromedp.WindowSize(412, 915))
	defer cancelA()
	bctx, cancelB := chromedp.NewContext(actx)
	defer cancelB()
	if err := chromedp.Do(bctx, chromedp.Navigate("about:blank")); err != nil {
		return 0, 0, 0, fmt.Errorf("starting chromium: %w", err)
	}
	if _, err := chromedp.Call(bctx, emulation.SetCPUThrottlingRate, emulation.SetCPUThrottlingRateParams{Rate: throttle}); err != nil {
		return 0, 0, 0, err
	}
	tctx, cancel := context.WithTimeout(bctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(tctx, chromedp.Navigate(base+"/")); err != nil {
		return 0, 0, 0, err
	}
	// Live data: the status event has filled in the box and the pins.
	if _, err := chromedp.Run(tctx, chromedp.Poll[bool](`document.getElementById("board").textContent !== "" && document.getElementById("stream").textContent === "live"`,
		chromedp.WithPollingInterval(5*time.Millisecond))); err != nil {
		return 0, 0, 0, fmt.Errorf("waiting for live data: %w", err)
	}
	live, err = chromedp.Run(tctx, chromedp.Evaluate[float64](`performance.now()`))
	if err != nil {
		return 0, 0, 0, err
	}
	type timing struct {
		Transfer float64 `json:"transfer"`
		FCP      float64 `json:"fcp"`
	}
	t, err := chromedp.Run(tctx, chromedp.Evaluate[timing](`(() => {
		const nav = performance.getEntriesByType("navigation")[0];
		let transfer = nav ? nav.transferSize : 0;
		for (const r of performance.getEntriesByType("resource")) if (!r.name.includes("/api/events")) transfer += r.transferSize;
		const p = performance.getEntriesByName("first-contentful-paint")[0];
		return {transfer, fcp: p ? p.startTime : -1};
	})()`))
	if err != nil {
		return 0, 0, 0, err
	}
	if t.FCP < 0 {
		return 0, 0, 0, fmt.Errorf("chromium reported no first-contentful-paint")
	}
	return t.Transfer, t.FCP, live, nil
}

func pageMedian(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}
