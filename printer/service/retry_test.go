package service

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"fieldkit/internal/bus"
	"fieldkit/printer/label"
	"fieldkit/printer/queue"
	"fieldkit/printer/transport"
)

// flakyLink answers every TSPL status query "ready" but refuses every
// write before its first byte, like a port that vanishes between the
// status check and the job.
type flakyLink struct {
	mu     sync.Mutex
	writes int
}

func (f *flakyLink) Write(context.Context, []byte) (int, error) {
	f.mu.Lock()
	f.writes++
	f.mu.Unlock()
	return 0, errors.Join(transport.ErrUnplugged, errors.New("open: no such device"))
}

func (f *flakyLink) Query(context.Context, []byte, transport.Framer, time.Duration) ([]byte, error) {
	return []byte{0x00}, nil
}

func (f *flakyLink) Close() error { return nil }

func TestWriteFailuresBeforeAnyByteRetryThenFail(t *testing.T) {
	b := bus.New(nil)
	alerts := b.Subscribe(AlertTopic("shelf"), 4)
	defer alerts.Close()
	cfg := Config{"shelf": {Profile: label.Profile{Language: label.TSPL}, Transport: "fake", PollInterval: 20 * time.Millisecond, MaxAttempts: 3}}
	svc, err := New(cfg, Deps{DataDir: t.TempDir(), Bus: b})
	if err != nil {
		t.Fatal(err)
	}
	link := &flakyLink{}
	svc.workers["shelf"].tr = link
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	defer func() { cancel(); <-done }()

	if _, _, err := svc.Submit(ctx, "shelf", JobRequest{ID: "r1", Label: textLabel("R1")}); err != nil {
		t.Fatal(err)
	}
	var j queue.Job
	waitFor(t, "the job to fail", func() bool {
		j, _ = svc.Store().Get(ctx, "r1")
		return j.State == queue.Failed
	})
	if j.Attempts != 3 || j.WriteStarted != true {
		t.Fatalf("failed job = %+v; want 3 attempts", j)
	}
	link.mu.Lock()
	writes := link.writes
	link.mu.Unlock()
	if writes != 3 {
		t.Fatalf("%d writes, want one per attempt", writes)
	}
	select {
	case ev := <-alerts.C():
		var a Alert
		if err := json.Unmarshal(ev.Payload, &a); err != nil || a.Job != "r1" || a.State != queue.Failed {
			t.Fatalf("alert %s, %v", ev.Payload, err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no alert for the failed job")
	}
	// A failed job is the operator's to reprint; it starts over.
	if j, err := svc.Reprint(ctx, "r1"); err != nil || j.State != queue.Queued || j.Attempts != 0 {
		t.Fatalf("reprint of failed = %+v, %v", j, err)
	}
}
