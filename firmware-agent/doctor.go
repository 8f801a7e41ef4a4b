package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"fieldkit/boards"
	"fieldkit/firmware-agent/config"
	"fieldkit/internal/clocksync"
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

// checkDataDir asks the kernel whether the data dir (or, before the
// first start, the folder it will be made in) is writable, without
// writing: doctor changes nothing on disk.
func checkDataDir(dir string) doctor.Result {
	abs, err := filepath.Abs(dir)
	if err != nil {
		abs = dir
	}
	fi, err := os.Stat(abs)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		parent := filepath.Dir(abs)
		for {
			if _, perr := os.Stat(parent); perr == nil || parent == filepath.Dir(parent) {
				break
			}
			parent = filepath.Dir(parent)
		}
		if err := unix.Access(parent, unix.W_OK|unix.X_OK); err != nil {
			return doctor.Failf("create it and give the fieldkit user write access (install -d -o fieldkit "+abs+")",
				"data dir %s does not exist and %s is not writable: %v", abs, parent, err)
		}
		return doctor.Pass(abs + " does not exist yet: the agent makes it at start")
	case err != nil:
		return doctor.Failf("check the path and its permissions", "data dir %s: %v", abs, err)
	case !fi.IsDir():
		return doctor.Failf("set data_dir to a folder", "data dir %s is not a folder", abs)
	}
	if err := unix.Access(abs, unix.W_OK|unix.X_OK); err != nil {
		return doctor.Failf("give the fieldkit user write access (chown fieldkit "+abs+")", "data dir %s is not writable: %v", abs, err)
	}
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
	cfg, err := f.loadBox()
	if err != nil {
		doctor.Print(stdout, []doctor.Result{{Name: "config", Status: doctor.Fail, Detail: err.Error(), Fix: "fix the config file; firmware-agent config check FILE shows every problem"}})
		return errSilentFail
	}
	rs, err := preflightFromAgent(ctx, cfg)
	if err != nil {
		var done []func()
		checks := offlineChecks(withCleanup(ctx, &done), cfg)
		rs = doctor.Run(ctx, checks, 3*time.Second)
		for i := len(done) - 1; i >= 0; i-- {
			done[i]()
		}
		fmt.Fprintf(stdout, "(no answer from an agent at %s (%v): checked from the config, %s)\n", cfg.HTTP.Listen, shortErr(err), cfgName(cfg))
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
	var body struct {
		Checks []doctor.Result `json:"checks"`
	}
	if err := newAgentClient(cfg, "").Do(ctx, http.MethodGet, "/api/preflight", nil, &body); err != nil {
		return nil, err
	}
	return body.Checks, nil
}

// offlineChecks builds the parts without running them, for their checks.
// They must change nothing on disk: doctor runs beside a stopped agent on
// a box that may not be set up yet.
func offlineChecks(ctx context.Context, cfg *config.Config) []doctor.Check {
	checks := coreChecks(cfg, nil)
	checks = append(checks, batteryOfflineChecks(cfg)...)
	checks = append(checks, printerOfflineChecks(cfg)...)
	return append(checks, receiptsOfflineChecks(ctx, cfg)...)
}

// shortErr is the last part of a dial error ("connection refused"), or
// the whole error when it has none.
func shortErr(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		return msg[i+2:]
	}
	return msg
}

type cleanupKey struct{}

// withCleanup gives offline check builders a place to leave what must be
// closed once the checks have run (see afterChecks).
func withCleanup(ctx context.Context, done *[]func()) context.Context {
	return context.WithValue(ctx, cleanupKey{}, done)
}

// afterChecks runs f once the offline checks are done (at once when no
// one collects cleanups).
func afterChecks(ctx context.Context, f func()) {
	if done, ok := ctx.Value(cleanupKey{}).(*[]func()); ok {
		*done = append(*done, f)
		return
	}
	f()
}
