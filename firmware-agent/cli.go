package main

import (
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"fieldkit/firmware-agent/config"
	"fieldkit/internal/confutil"
	"fieldkit/internal/logging"
	"fieldkit/internal/ratelog"
	"fieldkit/scenes"
)

const usage = `firmware-agent: the fieldkit box agent

usage:
  firmware-agent run [--config FILE] [--data DIR] [--http ADDR] [--mqtt-listen ADDR]
        with no --config: the demo (sim board, embedded broker on 127.0.0.1:1883,
        HTTP on 127.0.0.1:8080, data in ./fieldkit-data)
  firmware-agent config check FILE
        every check run makes before it opens hardware, each at file:line
  firmware-agent doctor [--config FILE] [--data DIR]
        the pre-show check: asks the running agent, else checks from the
        config without changing anything on disk
  firmware-agent token show | token rotate crew|admin [--config FILE] [--data DIR]
        print or replace the crew and admin tokens of the crew page and API
  firmware-agent scene [--config FILE] run NAME [JSON] | cancel NAME | list | show NAME
        drive the running agent's scenes
  firmware-agent venue [--config FILE] status | report [--since 8h]
        the venue's boxes and clocks; the venue's end-of-show report
  firmware-agent print [--config FILE] --printer NAME --label FILE [--id ID] | --list
  firmware-agent print --preview FILE OUT.png [--printer NAME | --lang L --width DOTS]
        queue a label on the running agent, or render one as the printer would
  firmware-agent receipts [--config FILE] verify | export | checkpoint | pubkey | report | rotate-key | ingest
        the signed receipt ledger (receipts with no command lists the flags)
  firmware-agent rehearsal [--config FILE] on | off | status [--agent URL]
        switch the running agent into rehearsal (crew) or back to real sales (admin)
  firmware-agent rehearse [--config FILE] --sales N --rate R [--mqtt-share F] [--discreet F]
        [--scene NAME --scene-every K] [--scan [--scan-twice F] [--desks K]]
        [--json FILE|-] [--agent URL] [--mqtt URL]
        phantom checkouts through the running agent's HTTP and MQTT paths, in
        rehearsal mode only, optionally scanning their labels back at the
        pickup desk, ending with a rehearsal report
  firmware-agent version
  firmware-agent help

Commands other than run read ` + "/etc/fieldkit/agent.yaml" + ` when no --config is given and it exists.
`

// demoYAML is the configuration of the demo.
//
//go:embed demo.yaml
var demoYAML []byte

// errUsage marks errors that are the caller's wording, answered with exit 2.
var errUsage = errors.New("usage")

func cli(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	err := dispatch(ctx, args, stdout, stderr)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintln(stderr, strings.TrimPrefix(err.Error(), "usage: "))
		fmt.Fprint(stderr, usage)
		return 2
	case errors.Is(err, errSilentFail):
		return 1
	default:
		fmt.Fprintln(stderr, "firmware-agent:", err)
		return 1
	}
}

// errSilentFail is returned when the command already printed why it failed.
var errSilentFail = errors.New("failed")

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: no command given", errUsage)
	}
	switch args[0] {
	case "run":
		return cmdRun(ctx, args[1:], stderr)
	case "config":
		if len(args) != 3 || args[1] != "check" {
			return fmt.Errorf("%w: config check FILE", errUsage)
		}
		return cmdConfigCheck(args[2], stdout, stderr)
	case "doctor":
		return cmdDoctor(ctx, args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, versionLine())
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	case "print":
		return cmdPrint(ctx, args[1:], stdout, stderr)
	case "receipts":
		return cmdReceipts(ctx, args[1:], stdout, stderr)
	case "scene":
		return cmdScene(ctx, args[1:], stdout, stderr)
	case "token":
		return cmdToken(ctx, args[1:], stdout, stderr)
	case "venue":
		return cmdVenue(ctx, args[1:], stdout, stderr)
	case "rehearsal":
		return cmdRehearsal(ctx, args[1:], stdout, stderr)
	case "rehearse":
		return cmdRehearse(ctx, args[1:], stdout, stderr)
	}
	return fmt.Errorf("%w: unknown command %q", errUsage, args[0])
}

// runFlags are the flags shared by run and doctor.
type runFlags struct {
	config, data, http, mqttListen string
}

func (f *runFlags) register(fs *flag.FlagSet, full bool) {
	fs.StringVar(&f.config, "config", "", "config file (default: the built-in demo)")
	if full {
		fs.StringVar(&f.data, "data", "", "data directory (overrides data_dir)")
		fs.StringVar(&f.http, "http", "", "HTTP listen address (overrides http.listen)")
		fs.StringVar(&f.mqttListen, "mqtt-listen", "", "embedded broker address (overrides mqtt.listen)")
	}
}

// defaultConfig is the installed box's config: commands that act on the
// box (doctor, token, scene, print, receipts) read it when no --config is
// given and it exists. run does not: with no --config it is the demo.
var defaultConfig = "/etc/fieldkit/agent.yaml"

// loadBox is load for the commands that act on the installed box.
func (f *runFlags) loadBox() (*config.Config, error) {
	if f.config == "" {
		if _, err := os.Stat(defaultConfig); err == nil {
			f.config = defaultConfig
		}
	}
	return f.load()
}

// load returns the config named by the flags, or the demo.
func (f *runFlags) load() (*config.Config, error) {
	var cfg *config.Config
	if f.config == "" {
		var err error
		if cfg, err = config.Parse("demo.yaml (built in)", demoYAML); err != nil {
			return nil, fmt.Errorf("the built-in demo config is broken: %w", err)
		}
		cfg.File = "" // the demo, as status and the crew page say
	} else {
		var err error
		if cfg, err = config.Load(f.config); err != nil {
			return nil, err
		}
	}
	if f.data != "" {
		cfg.DataDir = f.data
	}
	if f.http != "" {
		cfg.HTTP.Listen = f.http
	}
	if f.mqttListen != "" {
		if cfg.MQTT.URL != "" {
			return nil, fmt.Errorf("--mqtt-listen given, but the config names an external broker (mqtt.url: %s)", cfg.MQTT.URL)
		}
		cfg.MQTT.Listen = f.mqttListen
	}
	// Flags are checked like the file, so a typo in a flag is as clear.
	p := confutil.NewProblems()
	cfg.Validate(p)
	if !p.Empty() {
		var lines []string
		for _, pr := range p.List() {
			lines = append(lines, pr.Path+": "+pr.Msg)
		}
		return nil, errors.New(strings.Join(lines, "\n"))
	}
	return cfg, nil
}

// newLogger writes to w; under systemd (w is the journal stream) each
// line carries its priority and no time of its own.
func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.Log.Level))
	// Under systemd each line carries its journal priority and no time
	// (logging); a flood of one message (refused cues, bad payloads) must
	// not flood the journal: each says how many like it were dropped.
	h := logging.NewHandler(w, logging.Options{Level: lvl, JSON: cfg.Log.Format == "json"})
	return slog.New(ratelog.New(h, ratelog.Options{}))
}

func cmdRun(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f runFlags
	f.register(fs, true)
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: run takes no arguments, got %q", errUsage, fs.Args())
	}
	cfg, err := f.load()
	if err == nil {
		// Exactly what config check runs, before any hardware is opened.
		err = checkParts(cfg)
	}
	if err != nil {
		return fmt.Errorf("refusing to start: %w", err)
	}
	log := newLogger(cfg, stderr)
	slog.SetDefault(log)
	scenes.ReserveProcs()
	a, err := newApp(ctx, cfg, log)
	if err != nil {
		return err
	}
	return a.run(ctx)
}

func cmdConfigCheck(file string, stdout, stderr io.Writer) error {
	cfg, err := config.Load(file)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return errSilentFail
	}
	if err := checkParts(cfg); err != nil {
		fmt.Fprintln(stderr, err)
		return errSilentFail
	}
	fmt.Fprintf(stdout, "%s: ok (box %s, board %s)\n", file, cfg.Box, cfg.Board)
	return nil
}

// checkParts runs the validation that needs more than the file itself
// (pins against the board, scene files against the outputs and buttons)
// without opening hardware or starting anything. run and config check
// both run it, so they accept and refuse the same files.
func checkParts(cfg *config.Config) error {
	return errors.Join(checkPins(cfg), checkScenes(cfg))
}

// configFromArgs takes a leading --config FILE and --data DIR off args
// (for the part subcommands) and loads the config they name, or the demo.
func configFromArgs(args []string, stderr io.Writer) (*config.Config, []string, error) {
	var f runFlags
	for len(args) >= 2 {
		switch args[0] {
		case "--config", "-config":
			f.config = args[1]
		case "--data", "-data":
			f.data = args[1]
		default:
			goto done
		}
		args = args[2:]
	}
done:
	cfg, err := f.loadBox()
	if err != nil {
		return nil, nil, err
	}
	return cfg, args, nil
}
