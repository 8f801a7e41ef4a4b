package ratelog

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestFloodIsCutAndCounted(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var buf bytes.Buffer
	log := slog.New(New(slog.NewTextHandler(&buf, nil), Options{Burst: 3, Window: 10 * time.Second, Now: func() time.Time { return now }}))
	sub := log.With("part", "scenes")
	for i := 0; i < 1000; i++ {
		sub.Warn("bad MQTT message", "i", i)
		log.Info("other line")
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 6 {
		t.Fatalf("%d lines, want 3 of each message:\n%s", len(lines), buf.String())
	}
	if !strings.Contains(lines[0], "part=scenes") {
		t.Fatalf("attributes lost: %s", lines[0])
	}
	now = now.Add(10 * time.Second)
	buf.Reset()
	sub.Warn("bad MQTT message", "i", 1000)
	if got := buf.String(); !strings.Contains(got, "dropped_similar=997") || !strings.Contains(got, "i=1000") {
		t.Fatalf("next window's first line: %s", got)
	}
	buf.Reset()
	sub.Warn("bad MQTT message", "i", 1001)
	if got := buf.String(); strings.Contains(got, "dropped_similar") {
		t.Fatalf("dropped count repeated: %s", got)
	}
}
