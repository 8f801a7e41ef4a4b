package receipts

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Hand-overs. Every sale's order is handed to its buyer once, at the
// pickup desk, and that is written as a signed handover record in the
// same chain as the sale, so it syncs and verifies like one. The record's
// client_id column (never part of the signed bytes) holds
// "#handover:<sale seq>": the same unique index that makes a sale's
// retry idempotent makes a second hand-over of one sale impossible, even
// when two desks scan the same label at the same moment. A tablet's
// client_id cannot start with '#', so the two never meet.

// ErrUnknownCode: a scanned code names no sale this ledger holds.
var ErrUnknownCode = errors.New("unknown code")

// HandedOver is the refusal of a second hand-over: the sale was handed
// over already, at At by By (record Seq).
type HandedOver struct {
	Sale  uint64    `json:"sale"`
	Order string    `json:"order"`
	Seq   uint64    `json:"handover_seq"`
	At    time.Time `json:"at"`
	By    string    `json:"by"`
}

func (e *HandedOver) Error() string {
	return fmt.Sprintf("order %s (receipt %d) was already handed over at %s by %s", e.Order, e.Sale, e.At.UTC().Format("15:04:05 MST"), e.By)
}

type handoverReq struct {
	sale  uint64
	order string
	by    string
}

// clientID is the unique key of the record r asks for: the tablet's
// client_id for a sale, the sale's hand-over key for a hand-over, none
// for a rotation.
func (r *appendReq) clientID() string {
	switch {
	case r.order != nil:
		return r.order.ClientID
	case r.handover != nil:
		return handoverKey(r.handover.sale)
	}
	return ""
}

func handoverKey(sale uint64) string { return "#handover:" + strconv.FormatUint(sale, 10) }

// buildHandover appends a hand-over record to b.
func (l *Ledger) buildHandover(b *batch, r *appendReq, synced bool) error {
	h := &b.head
	now := l.o.Clock.Now()
	rec := &Record{
		V: Version, Type: TypeHandover, Box: l.o.Box, Kid: b.key.ID, Seq: h.seq + 1,
		TS: now.UTC().Format(tsLayout), ClockSynced: synced, Boot: l.o.BootID,
		Prev: h.hash, Turnover: h.turnover,
		Sale: r.handover.sale, Order: r.handover.order, By: r.handover.by,
	}
	// Signed as a rotation is, so that both follow any change to how the
	// ledger signs.
	s, err := signRecordIn(l.o.Domain, rec, b.key.Priv)
	if err != nil {
		return err
	}
	sig, _ := s.RawSig()
	b.rows = append(b.rows, row{seq: rec.Seq, clientID: handoverKey(r.handover.sale), typ: TypeHandover, tsMS: now.UnixMilli(), body: []byte(s.Record), sig: sig, hash: s.Hash})
	h.seq, h.hash = rec.Seq, s.Hash
	return nil
}

// HandOver writes the hand-over of sale seq, signed, in the chain. by
// says who handed it over (a scanner's or a crew member's name, 1-64
// characters, no control characters). A sale handed over before is
// refused with *HandedOver, and the refusal is kept for the end-of-show
// report; a seq that is not a stored sale is ErrUnknownCode.
func (l *Ledger) HandOver(ctx context.Context, sale uint64, by string) (Signed, error) {
	if by == "" || utf8.RuneCountInString(by) > 64 {
		return Signed{}, badInput("by", "%q: expected who hands over, 1 to 64 characters", by)
	}
	if err := checkText("by", by, true); err != nil {
		return Signed{}, err
	}
	s, err := l.Get(ctx, sale)
	if errors.Is(err, ErrNotFound) {
		return Signed{}, fmt.Errorf("receipt %d: %w", sale, ErrUnknownCode)
	}
	if err != nil {
		return Signed{}, err
	}
	rec, err := s.Decode()
	if err != nil {
		return Signed{}, err
	}
	if rec.Type != TypeSale {
		return Signed{}, fmt.Errorf("record %d is a %s, not a sale: %w", sale, rec.Type, ErrUnknownCode)
	}
	hs, replay, err := l.submit(ctx, &appendReq{ctx: ctx, handover: &handoverReq{sale: sale, order: rec.Order, by: by}})
	if err != nil {
		return Signed{}, err
	}
	if !replay {
		return hs, nil
	}
	first, err := hs.Decode()
	if err != nil {
		return Signed{}, err
	}
	at, _ := time.Parse(time.RFC3339Nano, first.TS)
	ref := &HandedOver{Sale: sale, Order: rec.Order, Seq: hs.Seq, At: at, By: first.By}
	if _, err := l.db.ExecContext(ctx, `INSERT INTO pickup_refusals(ts_ms, sale, handover, by) VALUES (?, ?, ?, ?)`,
		l.o.Clock.Now().UnixMilli(), sale, hs.Seq, by); err != nil {
		l.log.Warn("a refused second hand-over could not be kept for the report", "sale", sale, "err", err)
	}
	return Signed{}, ref
}

// StatusOfHandover maps a hand-over error to an HTTP status.
func StatusOfHandover(err error) int {
	var ho *HandedOver
	switch {
	case errors.As(err, &ho):
		return http.StatusConflict
	case errors.Is(err, ErrUnknownCode):
		return http.StatusNotFound
	}
	return StatusOf(err)
}

// tokenRE is a discreet buyer's token as encodeTail makes it.
var tokenRE = regexp.MustCompile(`^[A-Z2-7]{26}$`)

// Lookup finds the sale a scanned code names. A pickup label carries
// three: its QR is "<box>:<seq>:<short hash>", or in discreet mode the
// buyer's opaque token; its CODE128 is the order number. A code that
// names no stored sale, or names one with another short hash (a label of
// another box or another ledger), is ErrUnknownCode; an order number
// that several sales share is refused too, since only the QR tells
// them apart.
func (l *Reader) Lookup(ctx context.Context, code string) (Signed, error) {
	code = strings.TrimSpace(code)
	unknown := func() (Signed, error) {
		return Signed{}, fmt.Errorf("%q: %w: no sale on this box has this label", code, ErrUnknownCode)
	}
	if code == "" || len(code) > 256 || !utf8.ValidString(code) || strings.IndexFunc(code, unicode.IsControl) >= 0 {
		return unknown()
	}
	if parts := strings.Split(code, ":"); len(parts) == 3 && parts[0] == l.box {
		seq, err := strconv.ParseUint(parts[1], 10, 64)
		if err != nil || seq == 0 || len(parts[2]) != 8 {
			return unknown()
		}
		s, err := l.Get(ctx, seq)
		if errors.Is(err, ErrNotFound) {
			return unknown()
		}
		if err != nil {
			return Signed{}, err
		}
		if s.Short() != parts[2] {
			return unknown()
		}
		if r, err := s.Decode(); err != nil || r.Type != TypeSale {
			return unknown()
		}
		return s, nil
	}
	var q string
	if tokenRE.MatchString(code) {
		q = `SELECT seq, body, sig FROM records WHERE type = 'sale' AND json_extract(body, '$.buyer.token') = ? LIMIT 2`
	} else {
		q = `SELECT seq, body, sig FROM records WHERE type = 'sale' AND json_extract(body, '$.order') = ? ORDER BY seq LIMIT 2`
	}
	rows, err := l.db.QueryContext(ctx, q, code)
	if err != nil {
		return Signed{}, fmt.Errorf("receipts: look up %q: %w", code, err)
	}
	defer rows.Close()
	var found []Signed
	for rows.Next() {
		var seq uint64
		var body, sig []byte
		if err := rows.Scan(&seq, &body, &sig); err != nil {
			return Signed{}, fmt.Errorf("receipts: look up %q: %w", code, err)
		}
		found = append(found, makeSigned(seq, body, sig))
	}
	if err := rows.Err(); err != nil {
		return Signed{}, fmt.Errorf("receipts: look up %q: %w", code, err)
	}
	switch len(found) {
	case 0:
		return unknown()
	case 1:
		return found[0], nil
	}
	return Signed{}, &InputError{Code: http.StatusConflict, Field: "code", Msg: fmt.Sprintf("order %q is on more than one receipt; scan the label's QR code instead", code)}
}

// Pickup is one sale in the pickup queue.
type Pickup struct {
	Seq      uint64 `json:"seq"`
	Order    string `json:"order"`
	TS       string `json:"ts"`
	Items    []Item `json:"items"`
	Total    int64  `json:"total"`
	Currency string `json:"currency"`
	// Buyer is the buyer's name; empty for a discreet sale (Discreet).
	Buyer    string `json:"buyer,omitempty"`
	Discreet bool   `json:"discreet,omitempty"`
	// HandedOver is set once the order was handed over.
	HandedOver *HandoverInfo `json:"handed_over,omitempty"`
}

// HandoverInfo says when and by whom, and which record says so.
type HandoverInfo struct {
	Seq uint64 `json:"seq"`
	At  string `json:"at"`
	By  string `json:"by"`
}

// PickupFor is the pickup view of a stored sale, h its hand-over if any.
func PickupFor(s Signed, h *Signed) (Pickup, error) {
	r, err := s.Decode()
	if err != nil {
		return Pickup{}, err
	}
	p := Pickup{Seq: s.Seq, Order: r.Order, TS: r.TS, Items: r.Items, Total: r.Total, Currency: r.Currency}
	if b := r.Buyer; b != nil {
		if b.Token != "" {
			p.Discreet = true
		} else {
			p.Buyer = b.Name
		}
	}
	if h != nil {
		hr, err := h.Decode()
		if err != nil {
			return Pickup{}, err
		}
		p.HandedOver = &HandoverInfo{Seq: h.Seq, At: hr.TS, By: hr.By}
	}
	return p, nil
}

// PickupQueue returns the newest limit sales (0: all), newest first, each
// with its hand-over if it was handed over.
func (l *Reader) PickupQueue(ctx context.Context, limit int) ([]Pickup, error) {
	q := `SELECT s.seq, s.body, s.sig, h.seq, h.body, h.sig FROM records s
		LEFT JOIN records h ON h.client_id = '#handover:' || s.seq
		WHERE s.type = 'sale' ORDER BY s.seq DESC`
	args := []any{}
	if limit > 0 {
		q += ` LIMIT ?`
		args = append(args, limit)
	}
	rows, err := l.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("receipts: pickup queue: %w", err)
	}
	defer rows.Close()
	out := []Pickup{}
	for rows.Next() {
		var seq uint64
		var hseq sql.NullInt64
		var body, sig, hbody, hsig []byte
		if err := rows.Scan(&seq, &body, &sig, &hseq, &hbody, &hsig); err != nil {
			return nil, fmt.Errorf("receipts: pickup queue: %w", err)
		}
		var h *Signed
		if hseq.Valid {
			hs := makeSigned(uint64(hseq.Int64), hbody, hsig)
			h = &hs
		}
		p, err := PickupFor(makeSigned(seq, body, sig), h)
		if err != nil {
			return nil, fmt.Errorf("receipts: pickup queue: record %d: %w", seq, err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// Refusal is a second hand-over that was refused.
type Refusal struct {
	At       time.Time `json:"at"`
	Sale     uint64    `json:"sale"`
	Order    string    `json:"order"`
	By       string    `json:"by"`
	Handover uint64    `json:"handover_seq"`
}

// Refusals lists the refused second hand-overs at or after since.
func (l *Reader) Refusals(ctx context.Context, since time.Time) ([]Refusal, error) {
	rows, err := l.db.QueryContext(ctx, `SELECT p.ts_ms, p.sale, coalesce(json_extract(r.body, '$.order'), ''), p.by, p.handover
		FROM pickup_refusals p LEFT JOIN records r ON r.seq = p.sale WHERE p.ts_ms >= ? ORDER BY p.id`, since.UnixMilli())
	if err != nil && strings.Contains(err.Error(), "no such table") {
		return []Refusal{}, nil // a ledger from before hand-overs, opened read-only
	}
	if err != nil {
		return nil, fmt.Errorf("receipts: refused hand-overs: %w", err)
	}
	defer rows.Close()
	out := []Refusal{}
	for rows.Next() {
		var ms int64
		var f Refusal
		if err := rows.Scan(&ms, &f.Sale, &f.Order, &f.By, &f.Handover); err != nil {
			return nil, fmt.Errorf("receipts: refused hand-overs: %w", err)
		}
		f.At = time.UnixMilli(ms).UTC()
		out = append(out, f)
	}
	return out, rows.Err()
}
