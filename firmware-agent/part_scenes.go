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

	"fieldkit/drivers/cue"
	"fieldkit/drivers/outputs"
	"fieldkit/firmware-agent/config"
	"fieldkit/scenes"
	"fieldkit/scenes/demo"
	"fieldkit/scenes/scenecli"
)

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
	set, err := scenes.Load(os.DirFS(cfg.Scenes.Dir), cfg.Scenes.Dir, targets, cfg.MQTT.Prefix)
	if err != nil {
		return err
	}
	return set.CheckButtons(sortedKeys(cfg.Cues.Buttons))
}

// scenesPart is the scene engine.
type scenesPart struct{ *scenes.Engine }

func (scenesPart) Name() string { return "scenes" }

// newScenes builds the engine over the outputs it may drive; with no
// config file and no scenes dir, it runs the demo's scenes. venue (nil
// when the box is in none) takes the fires of venue-wide scenes.
func newScenes(cfg *config.Config, p plumbing, targets map[string]cue.Target, venue scenes.Venue) (scenesPart, error) {
	d := scenes.Deps{
		Targets: targets, MQTT: p.mqtt, Bus: p.bus, Clock: p.clock, Log: p.log, Venue: venue,
		Metrics: p.metrics, Health: p.health, HTTP: &http.Client{Timeout: 30 * time.Second},
	}
	if cfg.File == "" && cfg.Scenes.Dir == "" {
		d.Files, d.FilesName = demo.FS(), "demo scenes"
	}
	eng, err := scenes.New(cfg.Scenes, d)
	if err != nil {
		return scenesPart{}, fmt.Errorf("scenes: %w", err)
	}
	return scenesPart{eng}, nil
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
