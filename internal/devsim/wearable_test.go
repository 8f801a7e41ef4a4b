package devsim

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"fieldkit/internal/mqtttest"
	"fieldkit/internal/testutil"
)

func cueJSON(id, pattern string, deadline time.Time) string {
	return fmt.Sprintf(`{"id":%q,"pattern":%q,"deadline":%q}`, id, pattern, deadline.UTC().Format("2006-01-02T15:04:05.000Z07:00"))
}

// The wearable acks each fresh cue once it played it, acks a repeat
// again without playing it twice, and ignores stale cues and nonsense.
func TestWearableAcks(t *testing.T) {
	url := mqtttest.StartEmbedded(t)
	w, err := StartWearable(url, "sim-anna", "fieldkit/box1", "anna", 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	agent := mqtttest.Connect(t, url, "agent")
	acks := agent.Subscribe("fieldkit/box1/cue/anna/ack")
	cmd := "fieldkit/box1/cue/anna/cmd"
	soon := time.Now().Add(time.Minute)

	agent.Publish(cmd, 1, false, cueJSON("c1", "short", soon))
	mqtttest.Await(t, acks, 5*time.Second, "ack c1", func(m mqtttest.Msg) bool { return m.Payload == `{"id":"c1"}` && !m.Retained })
	agent.Publish(cmd, 1, false, cueJSON("c1", "short", soon))
	mqtttest.Await(t, acks, 5*time.Second, "ack of the repeat", func(m mqtttest.Msg) bool { return m.Payload == `{"id":"c1"}` })

	agent.Publish(cmd, 1, false, cueJSON("c2", "go-live", time.Now().Add(-time.Second)))
	agent.Publish(cmd, 1, false, `{"id":"c3"}`)
	agent.Publish(cmd, 1, false, `not json`)
	testutil.WaitFor(t, 5*time.Second, "five messages taken", func() bool { return w.taken.Load() == 5 })
	w.Mute(true)
	agent.Publish(cmd, 1, false, cueJSON("c4", "double", soon))
	// The wearable takes its cues in order: once c4 was taken muted, it
	// is unmuted for c5, and c5's ack is the next one.
	testutil.WaitFor(t, 5*time.Second, "c4 taken", func() bool { return w.taken.Load() == 6 })
	w.Mute(false)
	agent.Publish(cmd, 1, false, cueJSON("c5", "go-live", soon))
	if m := mqtttest.Await(t, acks, 5*time.Second, "the next ack", func(mqtttest.Msg) bool { return true }); m.Payload != `{"id":"c5"}` {
		t.Errorf("acked %s, want c5", m.Payload)
	}
	if got := w.Played(); !slices.Equal(got, []string{"short", "go-live"}) {
		t.Errorf("played %q", got)
	}
	if w.Stale() != 1 {
		t.Errorf("stale %d, want 1", w.Stale())
	}
}

func TestStartWearableRefusesBadID(t *testing.T) {
	for _, id := range []string{"", "a/b", "x+", "#"} {
		if _, err := StartWearable("tcp://127.0.0.1:1", "x", "fieldkit/box1", id, 0); err == nil {
			t.Errorf("id %q accepted", id)
		}
	}
}

func FuzzParseCue(f *testing.F) {
	for _, s := range []string{
		`{"id":"c1","pattern":"short","deadline":"2026-05-01T18:00:04.000Z"}`,
		`{"id":"c1","pattern":"short"}`, `{"id":"","pattern":"x","deadline":"2026-05-01T18:00:04Z"}`,
		`{"deadline":"yesterday"}`, `null`, `[]`, "\xff",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseCue(b)
		if err == nil && (c.ID == "" || c.Pattern == "" || c.Deadline.IsZero()) {
			t.Fatalf("accepted %q as %+v", b, c)
		}
	})
}
