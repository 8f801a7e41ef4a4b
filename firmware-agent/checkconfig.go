package main

import (
	"fmt"
	"sort"

	"fieldkit/boards"
	"fieldkit/drivers/outputs/kind"
	"fieldkit/firmware-agent/config"
	"fieldkit/internal/confutil"
)

// checkPins resolves every pin the config names against the board's
// profile, as opening the board would: logical names must be defined, and
// lines must exist on the board. Each problem is reported at its
// file:line. board: auto reads the device tree model only.
func checkPins(cfg *config.Config) error {
	prof, err := profileOf(cfg.Board)
	if err != nil {
		return err
	}
	p := confutil.NewProblems()
	for _, name := range sortedKeys(cfg.Pins) {
		if err := prof.CheckLine(cfg.Pins[name]); err != nil {
			p.Addf("pins."+name, "%v", err)
		}
	}
	check := func(at, pin string) {
		if pin == "" {
			return // refused by the config's own validation
		}
		if _, err := prof.Resolve(pin, cfg.Pins); err != nil {
			p.Addf(at, "%v", err)
		}
	}
	for _, name := range sortedKeys(cfg.Cues.Outputs) {
		// Every kind that drives GPIO lines says which.
		if pu, ok := cfg.Cues.Outputs[name].Config.(kind.PinUser); ok {
			for _, pin := range pu.Pins() {
				check("outputs."+name+".pin", pin)
			}
		}
	}
	for _, name := range sortedKeys(cfg.Cues.Buttons) {
		check("buttons."+name+".pin", cfg.Cues.Buttons[name].Pin)
	}
	if p.Empty() {
		return nil
	}
	doc := cfg.Doc
	if doc == nil {
		doc = &confutil.Doc{File: cfgName(cfg)}
	}
	return doc.Err(p)
}

// profileOf is the board profile the config names; for auto, the one the
// device tree names.
func profileOf(board string) (boards.Profile, error) {
	switch board {
	case "", "auto":
		d, err := boards.Detect("/")
		if err != nil {
			return boards.Profile{}, fmt.Errorf("board: auto: %w", err)
		}
		return d.Profile, nil
	}
	prof, ok := boards.Profiles[board]
	if !ok {
		return boards.Profile{}, fmt.Errorf("board: unknown profile %q", board)
	}
	return prof, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
