package receipts

import (
	"context"
	"fmt"
	"io"
	"sort"
	"time"
)

// ZReport is the end-of-show report, derived from the verified ledger.
type ZReport struct {
	Box      string     `json:"box"`
	Since    time.Time  `json:"since,omitzero"`
	Count    int        `json:"count"`
	Turnover int64      `json:"turnover"` // ledger turnover at the last sale
	Total    int64      `json:"total"`    // sum of the sales in the report
	Currency string     `json:"currency,omitempty"`
	FirstSeq uint64     `json:"first_seq"`
	LastSeq  uint64     `json:"last_seq"`
	BySKU    []SKUTotal `json:"by_sku"`
	ByPay    []PayTotal `json:"by_pay"`
	ByMinute []MinTotal `json:"by_minute"`
	// HandedOver counts the sales of the report handed over at pickup;
	// NotCollected lists the others, and CollectedTwice every second
	// hand-over that was refused (since the report's start).
	HandedOver     int        `json:"handed_over"`
	NotCollected   []OrderRef `json:"not_collected"`
	CollectedTwice []Refusal  `json:"collected_twice"`
}

// OrderRef names a sale by its receipt seq and order number.
type OrderRef struct {
	Seq   uint64 `json:"seq"`
	Order string `json:"order"`
}

type SKUTotal struct {
	SKU   string `json:"sku"`
	Qty   int64  `json:"qty"`
	Total int64  `json:"total"`
}

type PayTotal struct {
	Pay   string `json:"pay"`
	Count int    `json:"count"`
	Total int64  `json:"total"`
}

type MinTotal struct {
	Minute time.Time `json:"minute"`
	Count  int       `json:"count"`
	Total  int64     `json:"total"`
}

// Report verifies the ledger and sums the sales stamped at or after since
// (zero: all). A ledger that does not verify yields its Problem as error:
// no report is made from records that cannot be trusted.
func (l *Reader) Report(ctx context.Context, since time.Time, o VerifyOptions) (*ZReport, error) {
	c, p, err := startChain(ctx, l.db, l.dom, l.box, keyOrNil(o.First))
	if err != nil {
		return nil, err
	}
	if p != nil {
		return nil, p
	}
	z := &ZReport{Box: l.box, Since: since}
	sku := map[string]*SKUTotal{}
	pay := map[string]*PayTotal{}
	mins := map[time.Time]*MinTotal{}
	var sales []OrderRef
	handed := map[uint64]bool{}
	err = l.Range(ctx, c.Seq, 0, func(s Signed) error {
		r, _, err := c.Check(s)
		if err != nil {
			return err
		}
		if r.Type == TypeHandover {
			handed[r.Sale] = true
		}
		if r.Type != TypeSale {
			return nil
		}
		ts, _ := time.Parse(time.RFC3339Nano, r.TS)
		if !since.IsZero() && ts.Before(since) {
			return nil
		}
		if z.Count == 0 {
			z.FirstSeq = r.Seq
		}
		z.Count++
		sales = append(sales, OrderRef{Seq: r.Seq, Order: r.Order})
		z.LastSeq, z.Turnover, z.Currency = r.Seq, r.Turnover, r.Currency
		z.Total += r.Total
		for _, it := range r.Items {
			t := sku[it.SKU]
			if t == nil {
				t = &SKUTotal{SKU: it.SKU}
				sku[it.SKU] = t
			}
			t.Qty += it.Qty
			t.Total += it.Qty * it.Price
		}
		p := pay[r.Pay]
		if p == nil {
			p = &PayTotal{Pay: r.Pay}
			pay[r.Pay] = p
		}
		p.Count++
		p.Total += r.Total
		m := ts.UTC().Truncate(time.Minute)
		mt := mins[m]
		if mt == nil {
			mt = &MinTotal{Minute: m}
			mins[m] = mt
		}
		mt.Count++
		mt.Total += r.Total
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("receipts: report: the ledger does not verify: %w", err)
	}
	z.BySKU = make([]SKUTotal, 0, len(sku))
	for _, t := range sku {
		z.BySKU = append(z.BySKU, *t)
	}
	sort.Slice(z.BySKU, func(i, j int) bool { return z.BySKU[i].SKU < z.BySKU[j].SKU })
	z.ByPay = make([]PayTotal, 0, len(pay))
	for _, t := range pay {
		z.ByPay = append(z.ByPay, *t)
	}
	sort.Slice(z.ByPay, func(i, j int) bool { return z.ByPay[i].Pay < z.ByPay[j].Pay })
	z.ByMinute = make([]MinTotal, 0, len(mins))
	for _, t := range mins {
		z.ByMinute = append(z.ByMinute, *t)
	}
	sort.Slice(z.ByMinute, func(i, j int) bool { return z.ByMinute[i].Minute.Before(z.ByMinute[j].Minute) })
	z.NotCollected = []OrderRef{}
	for _, o := range sales {
		if handed[o.Seq] {
			z.HandedOver++
		} else {
			z.NotCollected = append(z.NotCollected, o)
		}
	}
	if z.CollectedTwice, err = l.Refusals(ctx, since); err != nil {
		return nil, err
	}
	return z, nil
}

func keyOrNil(pub []byte) *Key {
	if pub == nil {
		return nil
	}
	return &Key{Pub: pub, ID: KeyID(pub)}
}

// WriteText prints the report as a slip-shaped text.
func (z *ZReport) WriteText(w io.Writer) {
	money := func(v int64) string {
		sign := ""
		if v < 0 {
			sign, v = "-", -v
		}
		return fmt.Sprintf("%s%d.%02d", sign, v/100, v%100)
	}
	fmt.Fprintf(w, "Z REPORT  box %s\n", z.Box)
	if !z.Since.IsZero() {
		fmt.Fprintf(w, "since     %s\n", z.Since.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(w, "receipts  %d (seq %d-%d)\n", z.Count, z.FirstSeq, z.LastSeq)
	fmt.Fprintf(w, "total     %s %s\n", money(z.Total), z.Currency)
	fmt.Fprintf(w, "turnover  %s %s\n", money(z.Turnover), z.Currency)
	fmt.Fprintln(w, "-- by item")
	for _, t := range z.BySKU {
		fmt.Fprintf(w, "%-20s %5d  %12s\n", t.SKU, t.Qty, money(t.Total))
	}
	fmt.Fprintln(w, "-- by payment")
	for _, t := range z.ByPay {
		fmt.Fprintf(w, "%-20s %5d  %12s\n", t.Pay, t.Count, money(t.Total))
	}
	fmt.Fprintf(w, "pickup    %d handed over, %d not collected, %d refused second scans\n", z.HandedOver, len(z.NotCollected), len(z.CollectedTwice))
	fmt.Fprintln(w, "-- by minute (UTC)")
	for _, t := range z.ByMinute {
		fmt.Fprintf(w, "%-20s %5d  %12s\n", t.Minute.Format("2006-01-02 15:04"), t.Count, money(t.Total))
	}
	if z.HandedOver == 0 && len(z.CollectedTwice) == 0 {
		return // no pickup desk at this show: every order would be listed
	}
	fmt.Fprintln(w, "-- not collected")
	for _, o := range z.NotCollected {
		fmt.Fprintf(w, "%-20s receipt %d\n", o.Order, o.Seq)
	}
	fmt.Fprintln(w, "-- collected twice (second scan refused)")
	for _, f := range z.CollectedTwice {
		fmt.Fprintf(w, "%s  %-16s receipt %d by %s (handed over in record %d)\n", f.At.Format("2006-01-02 15:04:05"), f.Order, f.Sale, f.By, f.Handover)
	}
}
