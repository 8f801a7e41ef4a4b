package receipts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"fieldkit/internal/httpapi"
	"fieldkit/internal/topic"
)

// The pickup desk: a scanned code is looked up, the order shown, and the
// hand-over written to the chain. Scanners (firmware-agent), the crew
// page's scan box and its camera all come through Scan.

// ScanResult is a hand-over that was written: the sale as pickup staff
// see it and the signed hand-over record.
type ScanResult struct {
	Pickup   Pickup  `json:"pickup"`
	Handover Receipt `json:"handover"`
	// Rehearsal: the sale and its hand-over are the rehearsal ledger's.
	Rehearsal bool `json:"rehearsal,omitempty"`
}

// Refused is the answer to a scan that wrote nothing: an unknown code, or
// an order handed over before (Already says when and by whom).
type Refused struct {
	Error     string      `json:"error"`
	Code      string      `json:"code"`
	Already   *HandedOver `json:"already,omitempty"`
	Pickup    *Pickup     `json:"pickup,omitempty"`
	Rehearsal bool        `json:"rehearsal,omitempty"`
}

// Scan hands over the order that code names; by is who scanned it. A
// second scan of a handed-over order is refused with *HandedOver and
// raises PickupAlert on the bus (and so on MQTT); the payloads name the
// order and the receipt, never the buyer.
//
// Which ledger a code is looked up in depends on the code alone, never
// on the mode: a REHEARSAL: code in the rehearsal ledger (see
// ledgerFor), any other in the sales ledger. So real orders can still be
// handed over during a rehearsal, and a rehearsal hand-over is signed in
// the rehearsal domain next to its phantom sale, never in the real chain.
func (s *Service) Scan(ctx context.Context, code, by string) (ScanResult, error) {
	l, code, rehearsal, err := s.ledgerFor(code)
	if err != nil {
		s.log.Info("pickup scan refused", "by", by, "err", err)
		return ScanResult{}, err
	}
	sale, err := l.Lookup(ctx, code)
	if err != nil {
		s.log.Info("pickup scan refused", "by", by, "rehearsal", rehearsal, "err", err)
		return ScanResult{}, err
	}
	p, err := PickupFor(sale, nil)
	if err != nil {
		return ScanResult{}, err
	}
	h, err := l.HandOver(ctx, sale.Seq, by)
	var ho *HandedOver
	if errors.As(err, &ho) {
		s.lastRefused.Store(&RefusedScan{At: s.d.Clock.Now().UTC(), By: by, Already: *ho, Rehearsal: rehearsal})
		s.log.Warn("second hand-over refused", "sale", ho.Sale, "order", ho.Order, "by", by, "first_by", ho.By, "first_at", ho.At.Format(time.RFC3339), "rehearsal", rehearsal)
		s.publish(topic.PickupAlert, map[string]any{
			"kind": "second_scan", "sale": ho.Sale, "order": ho.Order, "by": by,
			"handed_over_at": ho.At.Format(time.RFC3339Nano), "handed_over_by": ho.By, "handover_seq": ho.Seq,
			"message": "refused: " + ho.Error(), "rehearsal": rehearsal,
		})
		return ScanResult{Pickup: p, Rehearsal: rehearsal}, err
	}
	if err != nil {
		return ScanResult{}, err
	}
	hr := NewReceipt(h)
	hr.Rehearsal = rehearsal
	p.HandedOver = &HandoverInfo{Seq: h.Seq, At: hr.Receipt.TS, By: by}
	s.log.Info("order handed over", "sale", sale.Seq, "order", p.Order, "by", by, "seq", h.Seq, "rehearsal", rehearsal)
	s.publish(topic.PickupHandover, map[string]any{"sale": sale.Seq, "order": p.Order, "by": by, "at": hr.Receipt.TS, "handover_seq": h.Seq, "rehearsal": rehearsal})
	return ScanResult{Pickup: p, Handover: hr, Rehearsal: rehearsal}, nil
}

// ledgerFor says which ledger a scanned code hands over from, and the
// code to look up there. A REHEARSAL: code is the rehearsal ledger's,
// looked up without its prefix, but only while the box rehearses:
// outside a rehearsal a phantom label left lying at the desk must not
// look like an order, so it is unknown. It is never looked up in the
// sales ledger, where the order number behind the prefix may be a real
// sale's too.
func (s *Service) ledgerFor(code string) (*Ledger, string, bool, error) {
	c := strings.TrimSpace(code)
	rest, ok := strings.CutPrefix(c, RehearsalCodePrefix)
	if !ok {
		return s.l, c, false, nil
	}
	if s.reh == nil || !s.Rehearsing() {
		return nil, "", true, fmt.Errorf("%q: %w: a rehearsal label and the box is not rehearsing; its order is a phantom, nothing to hand over", code, ErrUnknownCode)
	}
	return s.reh, rest, true, nil
}

func (s *Service) publish(t string, v any) {
	if s.d.Bus == nil {
		return
	}
	b, _ := json.Marshal(v)
	s.d.Bus.Publish(t, b)
}

// pickupRoutes are the pickup desk's API.
//
//	POST /api/pickup/scan  {"code": "...", "by": "desk 1"}  (crew)
//	GET  /api/pickup?limit=N                                (crew)
func (s *Service) pickupRoutes(r *httpapi.Router) {
	r.HandleFunc("POST /api/pickup/scan", httpapi.Crew, s.postScan)
	r.HandleFunc("GET /api/pickup", httpapi.Crew, s.getPickup)
}

// DefaultScanBy is who a scan from the page is recorded as when it names
// no one.
const DefaultScanBy = "crew page"

func (s *Service) postScan(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Code string `json:"code"`
		By   string `json:"by"`
	}
	if err := httpapi.DecodeJSON(w, r, 4<<10, &in); err != nil {
		httpapi.WriteErr(w, err)
		return
	}
	if in.Code == "" {
		httpapi.Error(w, http.StatusBadRequest, "code: missing; send the scanned label code")
		return
	}
	if in.By == "" {
		in.By = DefaultScanBy
	}
	res, err := s.Scan(r.Context(), in.Code, in.By)
	if err == nil {
		httpapi.WriteJSON(w, http.StatusCreated, res)
		return
	}
	out := Refused{Error: err.Error(), Code: in.Code}
	var ho *HandedOver
	if errors.As(err, &ho) {
		out.Already, out.Pickup, out.Rehearsal = ho, &res.Pickup, res.Rehearsal
	}
	httpapi.WriteJSON(w, StatusOfHandover(err), out)
}

// PickupQueue is the pickup desk's view: the newest sales, newest first.
type PickupQueue struct {
	Waiting    int      `json:"waiting"`
	HandedOver int      `json:"handed_over"`
	Orders     []Pickup `json:"orders"`
	// Refused is the newest refused second scan since the agent started,
	// from any scanner or page: the page sounds it.
	Refused *RefusedScan `json:"refused,omitempty"`
}

// RefusedScan is a second scan refused at At, by By.
type RefusedScan struct {
	At        time.Time  `json:"at"`
	By        string     `json:"by"`
	Already   HandedOver `json:"already"`
	Rehearsal bool       `json:"rehearsal,omitempty"`
}

func (s *Service) getPickup(w http.ResponseWriter, r *http.Request) {
	limit := 50
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 1000 {
			httpapi.Error(w, http.StatusBadRequest, fmt.Sprintf("limit=%q: expected 0 to 1000 (0 for 50)", v))
			return
		}
		if n > 0 {
			limit = n
		}
	}
	q, err := s.l.PickupQueue(r.Context(), limit)
	if err != nil {
		httpapi.Error(w, http.StatusInternalServerError, err.Error())
		return
	}
	out := PickupQueue{Orders: q, Refused: s.lastRefused.Load()}
	for _, p := range q {
		if p.HandedOver != nil {
			out.HandedOver++
		} else {
			out.Waiting++
		}
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
}
