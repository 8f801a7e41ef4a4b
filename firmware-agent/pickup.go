package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"

	"fieldkit/internal/bus"
	"fieldkit/printer/service"
	"fieldkit/printer/template"
	"fieldkit/sync/receipts"
)

// pickupLabels queues a pickup label for each new receipt on the
// configured printer. The receipt is already durable when it arrives
// here; the job id is derived from the receipt, so queueing it twice
// never prints it twice.
type pickupLabels struct {
	printer string
	svc     *service.Service
	bus     *bus.Bus
	log     *slog.Logger
	in      chan receipts.Receipt
}

func newPickupLabels(printer string, svc *service.Service, b *bus.Bus, log *slog.Logger) *pickupLabels {
	return &pickupLabels{printer: printer, svc: svc, bus: b, log: log, in: make(chan receipts.Receipt, 256)}
}

func (p *pickupLabels) Name() string { return "pickup-labels" }

// offer hands a receipt over without blocking the sale: a label that
// cannot be queued is reported, and can be printed from the receipt.
func (p *pickupLabels) offer(r receipts.Receipt) {
	select {
	case p.in <- r:
	default:
		p.log.Error("pickup label backlog full; print it from the receipt", "printer", p.printer, "seq", r.Seq)
		b, _ := json.Marshal(map[string]any{"error": "pickup label not queued", "receipt_seq": r.Seq})
		p.bus.Publish("printer/"+p.printer+"/alert", b)
	}
}

// Run queues the offered receipts' labels until ctx ends.
func (p *pickupLabels) Run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case r := <-p.in:
			if err := p.queue(ctx, r); err != nil && ctx.Err() == nil {
				p.log.Error("pickup label not queued", "printer", p.printer, "seq", r.Seq, "err", err)
			}
		}
	}
}

func (p *pickupLabels) queue(ctx context.Context, r receipts.Receipt) error {
	pk, err := json.Marshal(pickupFor(r))
	if err != nil {
		return err
	}
	id := fmt.Sprintf("receipt-%s-%d", r.Receipt.Box, r.Seq)
	_, _, err = p.svc.Submit(ctx, p.printer, service.JobRequest{ID: id, Pickup: pk})
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
