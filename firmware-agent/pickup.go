package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"fieldkit/internal/bus"
	"fieldkit/internal/topic"
	"fieldkit/printer/service"
	"fieldkit/printer/template"
	"fieldkit/sync/receipts"
)

// pickupLabels drains the ledger's label outbox into the printer's queue.
// The ledger stores a label request in the transaction of every sale, so
// an acknowledged sale always has one; it leaves the outbox only once the
// printer's durable queue holds the job. The job id is derived from the
// receipt, so handing it over twice (a crash between the two) prints it
// once. A printer that cannot take the job now delays the label, never
// drops it. The rehearsal ledger has an outbox of its own, drained the
// same way into labels that say REHEARSAL, with job ids of their own.
type pickupLabels struct {
	printer string
	svc     *service.Service
	bus     *bus.Bus
	log     *slog.Logger
	// sources are the sales ledger and, on a box that can rehearse, the
	// rehearsal ledger; set by newReceipts.
	sources []*labelSource
}

// labelSource is one ledger's outbox.
type labelSource struct {
	l         *receipts.Ledger
	rehearsal bool
	backlog   atomic.Int64
}

func newPickupLabels(printer string, svc *service.Service, b *bus.Bus, log *slog.Logger) *pickupLabels {
	return &pickupLabels{printer: printer, svc: svc, bus: b, log: log}
}

func (p *pickupLabels) Name() string { return "pickup-labels" }

// Status is the labels waiting in the outbox, for /api/status.
func (p *pickupLabels) Status() any {
	st := map[string]any{"printer": p.printer}
	for _, src := range p.sources {
		if src.rehearsal {
			st["rehearsal_backlog"] = src.backlog.Load()
		} else {
			st["backlog"] = src.backlog.Load()
		}
	}
	return st
}

// Run drains each outbox after every commit until ctx ends.
func (p *pickupLabels) Run(ctx context.Context) error {
	if len(p.sources) == 0 {
		return errors.New("pickup labels: no ledger")
	}
	var wg sync.WaitGroup
	for _, src := range p.sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.run(ctx, src)
		}()
	}
	wg.Wait()
	return nil
}

// run drains one outbox after every commit until ctx ends; while the
// printer refuses, it retries with backoff.
func (p *pickupLabels) run(ctx context.Context, src *labelSource) {
	const maxWait = 5 * time.Second
	wait := 100 * time.Millisecond
	failing := false
	for {
		committed := src.l.Committed() // before draining: no commit is missed
		err := p.drain(ctx, src)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			if failing {
				p.log.Info("pickup labels flowing again", "printer", p.printer)
			}
			failing, wait = false, 100*time.Millisecond
			select {
			case <-ctx.Done():
				return
			case <-committed:
			}
			continue
		}
		if !failing {
			p.log.Error("pickup labels wait in the outbox; retrying", "printer", p.printer, "backlog", src.backlog.Load(), "rehearsal", src.rehearsal, "err", err)
			b, _ := json.Marshal(map[string]any{"error": "pickup labels delayed: " + err.Error(), "backlog": src.backlog.Load()})
			p.bus.Publish(topic.PrinterAlert(p.printer), b)
		}
		failing = true
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = min(2*wait, maxWait)
	}
}

// drain hands every waiting label to the printer, oldest first, and
// returns at the first that it cannot hand over.
func (p *pickupLabels) drain(ctx context.Context, src *labelSource) error {
	for {
		n, err := src.l.LabelBacklog(ctx)
		if err != nil {
			return err
		}
		src.backlog.Store(int64(n))
		if n == 0 {
			return nil
		}
		batch, err := src.l.PendingLabels(ctx, 64)
		if err != nil {
			return err
		}
		if len(batch) == 0 {
			return nil
		}
		for _, s := range batch {
			err := p.queue(ctx, receipts.NewReceipt(s), src.rehearsal)
			if errors.Is(err, service.ErrBadRequest) {
				// This label can never print (a bug, not a full queue):
				// say so loudly and let the others through.
				p.log.Error("pickup label cannot be printed; print it from the receipt", "printer", p.printer, "seq", s.Seq, "err", err)
				b, _ := json.Marshal(map[string]any{"error": "pickup label cannot be printed: " + err.Error(), "receipt_seq": s.Seq})
				p.bus.Publish(topic.PrinterAlert(p.printer), b)
			} else if err != nil {
				return fmt.Errorf("receipt %d: %w", s.Seq, err)
			}
			if err := src.l.LabelDone(ctx, s.Seq); err != nil {
				return err
			}
		}
	}
}

func (p *pickupLabels) queue(ctx context.Context, r receipts.Receipt, rehearsal bool) error {
	pk := pickupFor(r)
	id := fmt.Sprintf("receipt-%s-%d", r.Receipt.Box, r.Seq)
	if rehearsal {
		// Its own ids: rehearsal seqs start at 1 again, and a rehearsal
		// job must never stand in for a real receipt's label. Its QR is
		// no real receipt's either.
		pk.Rehearsal, pk.QR = true, receipts.RehearsalCodePrefix+pk.QR
		id = fmt.Sprintf("rehearsal-%s-%d", r.Receipt.Box, r.Seq)
	}
	pkb, err := json.Marshal(pk)
	if err != nil {
		return err
	}
	_, _, err = p.svc.Submit(ctx, p.printer, service.JobRequest{ID: id, Pickup: pkb})
	return err
}

// pickupFor lays a receipt out as a pickup label: in discreet mode the
// buyer's name is not printed and the QR is the buyer's opaque token;
// otherwise the QR names the receipt (box, seq, short hash).
func pickupFor(r receipts.Receipt) template.Pickup {
	rec := r.Receipt
	p := template.Pickup{
		Order: rec.Order, Total: rec.Total, Currency: rec.Currency,
		ReceiptSeq: r.Seq, ReceiptHash: r.Hash,
		QR: fmt.Sprintf("%s:%d:%s", rec.Box, r.Seq, r.Short),
	}
	if b := rec.Buyer; b != nil {
		if b.Token != "" {
			p.Discreet, p.QR = true, b.Token
		} else {
			p.Buyer = b.Name
		}
	}
	for i, it := range rec.Items {
		if i == template.MaxItems {
			break
		}
		p.Items = append(p.Items, template.Item{Qty: int(it.Qty), Name: it.SKU, Price: it.Price * it.Qty})
	}
	return p
}
