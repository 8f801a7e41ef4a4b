package drv2605

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"fieldkit/drivers/cue"
)

// Target plays the named haptic patterns on a DRV2605: it implements
// cue.Target for the scene engine.
type Target struct {
	name string
	dev  *Dev
	log  *slog.Logger
	run  cue.Runner

	mu sync.Mutex
	st TargetState
}

// TargetState is the last cue asked for and how it went.
type TargetState struct {
	Pattern string `json:"pattern,omitempty"`
	Playing bool   `json:"playing"`
	Error   string `json:"error,omitempty"`
}

// NewTarget wraps dev as the output called name.
func NewTarget(name string, dev *Dev, log *slog.Logger) *Target {
	if log == nil {
		log = slog.Default()
	}
	return &Target{name: name, dev: dev, log: log.With("output", name)}
}

func (t *Target) Name() string { return t.name }
func (t *Target) Kind() string { return "drv2605" }

// Check accepts haptic patterns and off.
func (t *Target) Check(a cue.Action) error {
	if err := a.Validate(); err != nil {
		return err
	}
	switch a.Do {
	case cue.Haptic:
		return CheckSequence(cue.Patterns[a.Pattern].Effects)
	case cue.Off:
		return nil
	}
	return fmt.Errorf("cannot do %q; it can do haptic and off", a.Do)
}

// Apply starts the pattern (or stops the motor). The I2C traffic runs on
// the target's goroutine, so that a slow bus never holds up a scene step.
func (t *Target) Apply(_ context.Context, a cue.Action) error {
	if err := t.Check(a); err != nil {
		return err
	}
	t.mu.Lock()
	t.st = TargetState{Pattern: a.Pattern, Playing: a.Do == cue.Haptic}
	t.mu.Unlock()
	t.run.Go(func(ctx context.Context) {
		var err error
		if a.Do == cue.Haptic {
			err = t.dev.Play(cue.Patterns[a.Pattern].Effects)
		} else {
			err = t.dev.Stop()
		}
		if err != nil {
			t.log.Error("haptic cue failed", "pattern", a.Pattern, "err", err)
			t.mu.Lock()
			t.st.Playing, t.st.Error = false, err.Error()
			t.mu.Unlock()
		}
	})
	return nil
}

// Safe stops the motor (the safe state).
func (t *Target) Safe(ctx context.Context) error { return t.Apply(ctx, cue.Action{Do: cue.Off}) }

var _ cue.Safer = (*Target)(nil)

// Wait blocks until the last Apply's bus traffic is done (for tests and
// for an orderly Close).
func (t *Target) Wait() { t.run.Stop() }

func (t *Target) State() any {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.st
}

// Close waits for pending traffic and puts the chip in standby.
func (t *Target) Close() error {
	t.run.Stop()
	return t.dev.Halt()
}

var _ cue.Target = (*Target)(nil)
