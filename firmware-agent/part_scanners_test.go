package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"fieldkit/drivers/scanner"
	"fieldkit/internal/clock"
	"fieldkit/internal/testutil"
	"fieldkit/sync/receipts"
)

// fakeScanner emits its codes, then fails with err (an unplug) or, with
// err nil, waits for the context.
type fakeScanner struct {
	codes []string
	err   error
}

func (f *fakeScanner) Run(ctx context.Context, emit func(string)) error {
	for _, c := range f.codes {
		emit(c)
	}
	if f.err != nil {
		return f.err
	}
	<-ctx.Done()
	return nil
}

func (f *fakeScanner) Close() error { return nil }

// A scanner missing at start is opened again after the backoff; one that
// is unplugged mid-show is opened again; every code reaches the hand-over
// as "scanner:<name>", and the status and check follow.
func TestScannersReopenAndScan(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 6, 1, 18, 0, 0, 0, time.UTC))
	var mu sync.Mutex
	var scanned []string
	opens := 0
	p := newScanners(scanner.Config{{Name: "desk1", Mode: "serial", Device: "/dev/ttyACM9"}}, &receipts.Service{}, clk, slog.New(slog.NewTextHandler(io.Discard, nil)))
	p.scan = func(_ context.Context, code, by string) (receipts.ScanResult, error) {
		mu.Lock()
		defer mu.Unlock()
		scanned = append(scanned, by+" "+code)
		if code == "again" {
			return receipts.ScanResult{}, &receipts.HandedOver{Order: "A-1"}
		}
		return receipts.ScanResult{Pickup: receipts.Pickup{Order: code}}, nil
	}
	p.open = func(scanner.Source) (scanner.Reader, error) {
		mu.Lock()
		defer mu.Unlock()
		opens++
		switch opens {
		case 1:
			return nil, errors.New("no such device")
		case 2:
			return &fakeScanner{codes: []string{"A-1", "again"}, err: errors.New("hung up")}, nil
		}
		return &fakeScanner{codes: []string{"A-2"}}, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	count := func() (int, int) { mu.Lock(); defer mu.Unlock(); return opens, len(scanned) }
	// Each failure waits on the agent's clock: advance it past the backoff.
	for _, want := range []int{2, 3} {
		testutil.WaitFor(t, 5*time.Second, "the backoff timer", func() bool { return clk.Pending() > 0 })
		clk.Advance(30 * time.Second)
		testutil.WaitFor(t, 5*time.Second, "the scanner opened again", func() bool { o, _ := count(); return o >= want })
	}
	testutil.WaitFor(t, 5*time.Second, "three scans", func() bool { _, n := count(); return n == 3 })
	st := p.Status().([]scannerState)
	if len(st) != 1 || !st[0].Open || st[0].Scans != 3 || st[0].Refused != 1 || st[0].LastResult != "handed over A-2" {
		t.Fatalf("status %+v", st)
	}
	if r := p.Checks()[0].Run(ctx); r.Status != "ok" {
		t.Fatalf("check %+v", r)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"scanner:desk1 A-1", "scanner:desk1 again", "scanner:desk1 A-2"}; len(scanned) != 3 || scanned[0] != want[0] || scanned[1] != want[1] || scanned[2] != want[2] {
		t.Fatalf("scanned %q", scanned)
	}
}
