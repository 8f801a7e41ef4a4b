// Package demo holds the example scenes the agent runs with no config: a
// drop countdown, a wrap-up and a battery swap warning, on the demo outputs (strip, motor,
// cue_lamp, wled_stage, tasmota_spot, presenter).
package demo

import (
	"embed"
	"io/fs"
)

//go:embed *.yaml
var files embed.FS

// FS returns the demo scene files, for scenes.Deps.Files.
func FS() fs.FS { return files }

// Outputs are the output names the demo scenes use; the demo config must
// define each of them.
var Outputs = []string{"strip", "motor", "cue_lamp", "wled_stage", "tasmota_spot", "presenter"}
