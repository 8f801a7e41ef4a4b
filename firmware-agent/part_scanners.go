package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"fieldkit/drivers/scanner"
	"fieldkit/internal/backoff"
	"fieldkit/internal/clock"
	"fieldkit/internal/doctor"
	"fieldkit/sync/receipts"
)

// scannersPart reads the pickup desk's barcode scanners: each code
// scanned is a hand-over (receipts.Service.Scan), recorded as handed
// over by "scanner:<name>". A scanner that cannot be opened or goes away
// (unplugged) is opened again with backoff (up to 30 s); the part never
// blocks the others.
type scannersPart struct {
	cfg   scanner.Config
	scan  func(ctx context.Context, code, by string) (receipts.ScanResult, error)
	open  func(scanner.Source) (scanner.Reader, error)
	clock clock.Clock
	log   *slog.Logger

	mu    sync.Mutex
	state map[string]*scannerState
}

// scannerState is one scanner's line in /api/status.
type scannerState struct {
	Name     string    `json:"name"`
	Mode     string    `json:"mode"`
	Device   string    `json:"device"`
	Open     bool      `json:"open"`
	Error    string    `json:"error,omitempty"`
	Scans    int       `json:"scans"`
	Refused  int       `json:"refused"`
	LastScan time.Time `json:"last_scan,omitzero"`
	// LastResult is what the last scan did: "handed over <order>",
	// "refused: ...".
	LastResult string `json:"last_result,omitempty"`
}

func newScanners(cfg scanner.Config, rs *receipts.Service, clk clock.Clock, log *slog.Logger) *scannersPart {
	p := &scannersPart{cfg: cfg, scan: rs.Scan, open: scanner.Open, clock: clk, log: log.With("part", "scanners"), state: map[string]*scannerState{}}
	for _, s := range cfg {
		p.state[s.Name] = &scannerState{Name: s.Name, Mode: s.Mode, Device: s.Device}
	}
	return p
}

func (p *scannersPart) Name() string { return "scanners" }

// Status lists the scanners in config order.
func (p *scannersPart) Status() any {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]scannerState, 0, len(p.cfg))
	for _, s := range p.cfg {
		out = append(out, *p.state[s.Name])
	}
	return out
}

// Checks: each scanner is open (a scanner is optional hardware, so a
// closed one warns; the page's scan box and camera still work).
func (p *scannersPart) Checks() []doctor.Check {
	var out []doctor.Check
	for _, s := range p.cfg {
		out = append(out, doctor.Check{Name: "scanner " + s.Name, Run: func(context.Context) doctor.Result {
			p.mu.Lock()
			st := *p.state[s.Name]
			p.mu.Unlock()
			if !st.Open {
				return doctor.Warnf("plug the scanner in (keyboard mode: its /dev/input/by-id link; serial: its port) and check the agent may read it (groups input, dialout)",
					"%s %s is not open: %s", s.Mode, s.Device, st.Error)
			}
			return doctor.Pass(fmt.Sprintf("%s %s open, %d scans", s.Mode, s.Device, st.Scans))
		}})
	}
	return out
}

// Run reads every scanner until ctx ends.
func (p *scannersPart) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, s := range p.cfg {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.follow(ctx, s)
		}()
	}
	wg.Wait()
	return nil
}

// follow keeps one scanner open and reading, reopening it with backoff.
func (p *scannersPart) follow(ctx context.Context, s scanner.Source) {
	bo := backoff.Backoff{Base: 2 * time.Second, Cap: 30 * time.Second}
	for ctx.Err() == nil {
		r, err := p.open(s)
		if err == nil {
			p.setOpen(s.Name, true, "")
			p.log.Info("scanner open", "scanner", s.Name, "mode", s.Mode, "device", s.Device)
			err = r.Run(ctx, func(code string) { p.handle(ctx, s.Name, code) })
			r.Close()
			if err == nil {
				return // ctx ended
			}
			bo.Reset()
		}
		p.setOpen(s.Name, false, err.Error())
		wait := bo.Next()
		p.log.Warn("scanner not readable; trying again", "scanner", s.Name, "in", wait.Round(time.Millisecond), "err", err)
		if backoff.Sleep(ctx, p.clock, wait) != nil {
			return
		}
	}
}

func (p *scannersPart) setOpen(name string, open bool, msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.state[name].Open, p.state[name].Error = open, msg
}

// handle hands over the order a code names. The scanner has no screen:
// a refusal reaches the crew on the page and on MQTT (receipts.Scan).
func (p *scannersPart) handle(ctx context.Context, name, code string) {
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	res, err := p.scan(sctx, code, "scanner:"+name)
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.state[name]
	st.Scans++
	st.LastScan = p.clock.Now().UTC()
	if err != nil {
		st.Refused++
		st.LastResult = "refused: " + err.Error()
		return
	}
	st.LastResult = "handed over " + res.Pickup.Order
}
