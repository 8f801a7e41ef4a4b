package mqttc

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"fieldkit/internal/mqtttest"
)

func runConn(t *testing.T, o Options) (*Conn, context.CancelFunc) {
	t.Helper()
	c := New(o)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Run did not return within 5 s of cancel")
		}
	})
	return c, cancel
}

// Two agents with one box id on a real Mosquitto: the first keeps the
// broker, the second finds the box id taken and stays off (no fight over
// the client id), both report the duplicate, and the second connects once
// the first is gone.
func TestDuplicateBoxIDOnMosquitto(t *testing.T) {
	m := mqtttest.StartMosquitto(t)
	o := Options{URL: m.URL(), ClientID: "fieldkit-box1", Prefix: "fieldkit/box1", ProbeEvery: 300 * time.Millisecond, Log: quiet()}
	first, stopFirst := runConn(t, o)
	waitFor(t, 10*time.Second, "first agent connected", first.Connected)

	second, _ := runConn(t, o)
	waitFor(t, 10*time.Second, "second agent refuses", func() bool {
		d := second.Status().Duplicate
		return d != nil && d.Refused && d.Other.ID == first.Instance().ID
	})
	waitFor(t, 10*time.Second, "first agent sees the second", func() bool {
		d := first.Status().Duplicate
		return d != nil && !d.Refused && d.Other.ID == second.Instance().ID
	})
	// Several probes later the first still holds its one connection.
	deadline := time.Now().Add(10 * time.Second)
	for probes := 0; probes < 3; {
		if time.Now().After(deadline) {
			t.Fatal("the second agent stopped probing")
		}
		before := second.Status().Duplicate.Seen
		waitFor(t, 5*time.Second, "another probe", func() bool { return second.Status().Duplicate.Seen.After(before) })
		probes++
	}
	if second.Connected() || second.Connects() != 0 {
		t.Fatalf("the second agent connected %d times", second.Connects())
	}
	if !first.Connected() || first.Connects() != 1 {
		t.Fatalf("the first agent was knocked off: connected %v, %d connects", first.Connected(), first.Connects())
	}
	if r := second.Status().Reason; r == "" {
		t.Fatal("the refused agent gives no reason")
	}

	stopFirst()
	waitFor(t, 10*time.Second, "second agent takes over once the first is gone", second.Connected)
	if second.Status().Duplicate != nil {
		t.Fatalf("duplicate still reported after the other agent left: %+v", second.Status().Duplicate)
	}
}

// An "online" left behind by an agent the broker has not yet noticed is
// dead does not keep the box off: nobody answers the probe.
func TestStaleOnlineDoesNotBlock(t *testing.T) {
	m := mqtttest.StartMosquitto(t)
	cl := mqtttest.Connect(t, m.URL(), "leftover")
	cl.Publish("fieldkit/box1/status", 1, true, "online")
	cl.Publish("fieldkit/box1/instance", 1, true, `{"id":"GONEGONEGONEGONE","host":"old","started":"2026-01-01T00:00:00Z"}`)
	c, _ := runConn(t, Options{URL: m.URL(), ClientID: "fieldkit-box1", Prefix: "fieldkit/box1", ProbeWait: 300 * time.Millisecond, Log: quiet()})
	waitFor(t, 10*time.Second, "connect despite a stale online", c.Connected)
	if d := c.Status().Duplicate; d != nil {
		t.Fatalf("stale online reported as a duplicate: %+v", d)
	}
}

func FuzzParseInstance(f *testing.F) {
	for _, s := range []string{
		`{"id":"ABCDEFGH12345678","host":"box","pid":12,"started":"2026-12-02T06:00:00Z"}`,
		`{"id":""}`, `{}`, `null`, `[]`, `{"id":"a\u0000b"}`, `{"id":1}`, `online`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		i, err := ParseInstance(b)
		if err != nil {
			return
		}
		if i.ID == "" || len(i.ID) > 64 {
			t.Fatalf("accepted id %q", i.ID)
		}
		_ = i.String()
	})
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
