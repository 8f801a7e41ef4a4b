// Package kind is what an output kind implements to plug into
// drivers/outputs: a config type of its own, decoded strictly from the
// output's entry (every key but kind), that validates itself and builds
// the output. drivers/outputs registers the kinds in one table.
package kind

import (
	"log/slog"
	"regexp"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/spi"

	"fieldkit/drivers/cue"
	"fieldkit/drivers/mqttdev"
	"fieldkit/internal/clock"
	"fieldkit/internal/confutil"
)

// Config is one output's settings, of one kind. Its fields carry yaml
// tags; a key that is not one of them is refused when the file is read.
type Config interface {
	// Validate records problems at paths relative to the output
	// ("pin", "leds"; "" for the output itself).
	Validate(p *confutil.Problems)
	// Build makes the output called name. It runs after Validate passed.
	Build(name string, env Env) (cue.Target, error)
}

// PinUser is a Config that drives GPIO lines, so that two outputs (or an
// output and a button) are refused when they share one.
type PinUser interface {
	Pins() []string
}

// Referrer is a Config that hands cues on to another output (a wearable's
// fallback); the other output is checked to exist, and chains to end.
type Referrer interface {
	Refers() string
}

// Env is what Build may use. Every field is set (Board and MQTT may be
// stand-ins that refuse, see CheckOnly).
type Env struct {
	// Kind is the entry's kind name (one package may build several).
	Kind  string
	Board Board
	// MQTT is nil when the agent has no connection.
	MQTT  mqttdev.Conn
	Bus   Events
	Clock clock.Clock
	Log   *slog.Logger
	// Metrics is for outputs that hear back from their device (nil: none).
	Metrics *cue.Metrics
	// CheckOnly builds the output only to check scene files against it:
	// no hardware is opened and nothing is sent. Such outputs are never
	// applied; a kind that would have to ask its device returns a target
	// from what it knows without it, wrapped in Unopened.
	CheckOnly bool
	// Output returns another output of the same config, building it
	// first if need be.
	Output func(name string) (cue.Target, error)
}

// Board hands out the hardware by name (the agent's board profile).
type Board interface {
	// Pin resolves a logical name (cue_lamp) or a line (GPIO17).
	Pin(name string) (gpio.PinIO, error)
	I2C(bus string) (i2c.Bus, error)
	SPI(port string) (spi.PortCloser, error)
}

// Events is the agent's in-process bus (internal/bus.Bus), as far as
// outputs use it.
type Events interface {
	Publish(topic string, payload []byte)
}

// Unopened is a target whose device was never opened (CheckOnly):
// closing it has nothing to release.
func Unopened(t cue.Target) cue.Target { return unopened{t} }

type unopened struct{ cue.Target }

func (unopened) Close() error { return nil }

// NameRE is what output, button and wearable names look like.
var NameRE = regexp.MustCompile(`^[a-z0-9_-]{1,32}$`)

var pinRE = regexp.MustCompile(`^([a-z0-9_-]{1,32}|GPIO[0-9]{1,3})$`)

// CheckPin records a missing or malformed pin name at at (at.pin).
func CheckPin(p *confutil.Problems, at, pin string) {
	switch {
	case pin == "":
		p.Addf(at, "missing pin: a logical name from pins: (e.g. cue_lamp) or a line (e.g. GPIO17)")
	case !pinRE.MatchString(pin):
		p.Addf(joinPath(at, "pin"), "%q: expected a logical name (e.g. cue_lamp) or a line name (e.g. GPIO17)", pin)
	}
}

func joinPath(a, b string) string {
	if a == "" {
		return b
	}
	return a + "." + b
}
