package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"fieldkit/drivers/outputs"
	"fieldkit/firmware-agent/config"
	"fieldkit/scenes"
	"fieldkit/scenes/demo"
	"fieldkit/scenes/scenecli"
)

// The scene engine, and the scene command that talks to it.
func init() {
	partBuilders = append(partBuilders, buildScenes)
	partChecks = append(partChecks, checkScenes)
	subcommands["scene"] = cmdScene
}

// checkScenes loads the configured scene files against the configured
// outputs, built for checking only (no hardware, nothing sent), so that
// config check reports a scene's mistakes at file:line as run would.
func checkScenes(cfg *config.Config) error {
	if cfg.Scenes.Dir == "" {
		return nil
	}
	targets, _, err := outputs.Build(cfg.Cues, outputs.Deps{CheckOnly: true, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	defer outputs.CloseAll(targets)
	_, err = scenes.Load(os.DirFS(cfg.Scenes.Dir), cfg.Scenes.Dir, targets, cfg.MQTT.Prefix)
	return err
}

func buildScenes(_ context.Context, a *app) error {
	d := scenes.Deps{
		Targets: a.targets, MQTT: a.mqtt, Bus: a.bus, Clock: a.clock, Log: a.log,
		Metrics: a.metrics, Health: a.health, HTTP: &http.Client{Timeout: 30 * time.Second},
	}
	if a.cfg.File == "" && a.cfg.Scenes.Dir == "" {
		d.Files, d.FilesName = demo.FS(), "demo scenes"
	}
	eng, err := scenes.New(a.cfg.Scenes, d)
	if err != nil {
		return fmt.Errorf("scenes: %w", err)
	}
	a.addPart("scenes", false, eng.Run)
	eng.Routes(a.router)
	a.checks = append(a.checks, eng.Checks()...)
	a.status["scenes"] = eng.Status
	a.reload = append(a.reload, eng.Reload)
	return nil
}

// cmdScene runs `scene run|cancel|list|show` against the running agent.
func cmdScene(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, rest, err := configFromArgs(args, stderr)
	if err != nil {
		return err
	}
	return scenecli.RunCLI(ctx, rest, stdout, stderr, agentURL(cfg), agentToken(cfg))
}

// agentURL is the base URL of the agent named by cfg, on loopback when it
// listens on every address.
func agentURL(cfg *config.Config) string {
	scheme := "http"
	if cfg.HTTP.TLSCert != "" {
		scheme = "https"
	}
	host, port, err := net.SplitHostPort(cfg.HTTP.Listen)
	if err != nil {
		return scheme + "://" + cfg.HTTP.Listen
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}
