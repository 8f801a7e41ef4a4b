package deps

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"fieldkit/internal/clock"
)

func TestDefaults(t *testing.T) {
	if Clock(nil) == nil {
		t.Fatal("no clock for nil")
	}
	if d := time.Since(Clock(nil).Now()); d < 0 || d > time.Minute {
		t.Fatalf("the default clock is %v off", d)
	}
	f := clock.NewFake(time.Unix(42, 0))
	if Clock(f) != f {
		t.Fatal("a given clock was replaced")
	}
	if Log(nil) != slog.Default() {
		t.Fatal("nil logger is not the default")
	}
	l := slog.New(slog.NewTextHandler(io.Discard, nil))
	if Log(l) != l {
		t.Fatal("a given logger was replaced")
	}
}
