package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"fieldkit/boards"
	"fieldkit/internal/clocksync"
	"fieldkit/internal/config"
	"fieldkit/internal/doctor"
)

// coreChecks are the checks that need no part: the board, the broker, the
// data dir and the clock. Config validity is checked by loading it.
func coreChecks(cfg *config.Config, a *app) []doctor.Check {
	return []doctor.Check{
		{Name: "config", Run: func(context.Context) doctor.Result {
			if cfg.File == "" {
				return doctor.Warnf("write /etc/fieldkit/agent.yaml and start with --config", "no config file: running the built-in demo")
			}
			return doctor.Pass(cfg.File + " is valid")
		}},
		{Name: "board", Run: func(context.Context) doctor.Result { return checkBoard(cfg) }},
		{Name: "broker", Run: func(ctx context.Context) doctor.Result { return checkBroker(ctx, cfg, a) }},
		{Name: "box id", Run: func(ctx context.Context) doctor.Result { return checkBoxID(ctx, a) }},
		{Name: "data dir", Run: func(context.Context) doctor.Result { return checkDataDir(cfg.DataDir) }},
		{Name: "clock", Run: func(context.Context) doctor.Result { return checkClock(clocksync.Kernel{}, time.Now()) }},
	}
}

func checkBoard(cfg *config.Config) doctor.Result {
	if cfg.Board == "sim" {
		return doctor.Pass("sim board (no hardware is driven)")
	}
	d, err := boards.Detect("/")
	if err != nil {
		return doctor.Failf("check /proc/device-tree/model", "board detection: %v", err)
	}
	if cfg.Board != "auto" && cfg.Board != d.Profile.Name {
		return doctor.Warnf("set board: "+d.Profile.Name+" (or auto) in the config",
			"config says %s but this looks like %s (%q)", cfg.Board, d.Profile.Name, d.Model)
	}
	if d.Profile.Name == "generic" {
		return doctor.Warnf("set board: in the config if this is a Raspberry Pi", "no known board model found (%q): generic Linux profile", d.Model)
	}
	return doctor.Pass(fmt.Sprintf("%s (%s)", d.Profile.Name, d.Model))
}

func checkBroker(ctx context.Context, cfg *config.Config, a *app) doctor.Result {
	if a != nil && a.mqtt != nil {
		if a.mqtt.Connected() {
			return doctor.Pass("connected to " + a.brokerAddr())
		}
		return doctor.Failf("check that the broker runs and the address, user and password in mqtt: are right",
			"not connected to %s", a.brokerAddr())
	}
	addr := cfg.MQTT.Listen
	if cfg.MQTT.URL != "" {
		u, err := url.Parse(cfg.MQTT.URL)
		if err != nil {
			return doctor.Failf("fix mqtt.url", "%v", err)
		}
		addr = u.Host
		if u.Port() == "" {
			addr = net.JoinHostPort(u.Hostname(), "1883")
		}
	}
	var d net.Dialer
	dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c, err := d.DialContext(dctx, "tcp", addr)
	if err == nil {
		c.Close()
		return doctor.Pass("broker answers at " + addr)
	}
	if cfg.MQTT.URL != "" {
		return doctor.Failf("start the venue's broker or fix mqtt.url", "cannot reach %s: %v", addr, err)
	}
	ln, lerr := net.Listen("tcp", addr)
	if lerr != nil {
		return doctor.Failf("stop what holds the port or set mqtt.listen", "embedded broker address %s is taken: %v", addr, lerr)
	}
	ln.Close()
	return doctor.Pass("embedded broker will listen on " + addr + " when the agent runs")
}

func checkDataDir(dir string) doctor.Result {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return doctor.Failf("create it and give the fieldkit user write access", "data dir %s: %v", dir, err)
	}
	f, err := os.CreateTemp(dir, ".doctor-*")
	if err != nil {
		return doctor.Failf("give the fieldkit user write access (chown fieldkit "+dir+")", "data dir %s is not writable: %v", dir, err)
	}
	name := f.Name()
	_, werr := f.Write([]byte("fieldkit"))
	serr := f.Sync()
	f.Close()
	os.Remove(name)
	if werr != nil || serr != nil {
		return doctor.Failf("check the disk (dmesg) and free space", "data dir %s: write or fsync failed: %v", dir, errors.Join(werr, serr))
	}
	abs, _ := filepath.Abs(dir)
	return doctor.Pass(abs + " is writable")
}

func checkClock(c clocksync.Checker, now time.Time) doctor.Result {
	if now.Year() < 2024 {
		return doctor.Failf("connect the box to a network with NTP or fit an RTC",
			"the clock says %s: it was never set", now.Format(time.RFC3339))
	}
	if !c.Synced() {
		return doctor.Warnf("connect to a network with NTP (timedatectl status); receipts are marked clock_synced=false until then",
			"the clock is not synchronised")
	}
	return doctor.Pass("synchronised")
}

// cmdDoctor asks the running agent for its pre-show check; when no agent
// answers, it builds the parts from the config (without starting them)
// and runs the same checks itself.
func cmdDoctor(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f runFlags
	f.register(fs, true)
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	cfg, err := f.load()
	if err != nil {
		doctor.Print(stdout, []doctor.Result{{Name: "config", Status: doctor.Fail, Detail: err.Error(), Fix: "fix the config file; firmware-agent config check FILE shows every problem"}})
		return errSilentFail
	}
	rs, err := preflightFromAgent(ctx, cfg)
	if err != nil {
		rs = doctor.Run(ctx, offlineChecks(ctx, cfg), 3*time.Second)
		fmt.Fprintln(stdout, "(no agent answers at "+cfg.HTTP.Listen+": checked from the config)")
	} else {
		fmt.Fprintln(stdout, "(asked the running agent at "+cfg.HTTP.Listen+")")
	}
	doctor.Print(stdout, rs)
	if doctor.Worst(rs) == doctor.Fail {
		return errSilentFail
	}
	return nil
}

func preflightFromAgent(ctx context.Context, cfg *config.Config) ([]doctor.Result, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, agentURL(cfg)+"/api/preflight", nil)
	if err != nil {
		return nil, err
	}
	if tok := agentToken(cfg); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	c := &http.Client{Timeout: 30 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("agent answered %s", resp.Status)
	}
	var body struct {
		Checks []doctor.Result `json:"checks"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, err
	}
	return body.Checks, nil
}

// agentToken finds a token for talking to the local agent ("" in the
// open demo); part_*.go files may set it.
var agentToken = func(cfg *config.Config) string { return "" }

// offlineChecks builds the parts without running them, for their checks.
func offlineChecks(ctx context.Context, cfg *config.Config) []doctor.Check {
	checks := coreChecks(cfg, nil)
	for _, b := range offlineCheckBuilders {
		checks = append(checks, b(ctx, cfg)...)
	}
	return checks
}

// offlineCheckBuilders are added by part_*.go files.
var offlineCheckBuilders []func(ctx context.Context, cfg *config.Config) []doctor.Check
