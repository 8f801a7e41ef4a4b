package venue

import (
	"cmp"
	"slices"
	"time"
)

// Summary is one box's end-of-show report as it travels to the venue:
// the box made it from its own ledger after verifying every signature
// and link (a ledger that does not verify yields an error instead).
type Summary struct {
	Box      string    `json:"box"`
	Since    time.Time `json:"since,omitzero"`
	Count    int       `json:"count"`
	Total    int64     `json:"total"`
	Turnover int64     `json:"turnover"`
	Currency string    `json:"currency,omitempty"`
	FirstSeq uint64    `json:"first_seq"`
	LastSeq  uint64    `json:"last_seq"`
	// Head is the hash of the box's last record, so that a member's
	// figures can be matched with its chain later.
	Head  string     `json:"head,omitempty"`
	BySKU []SKUTotal `json:"by_sku"`
}

// SKUTotal is one article's sales.
type SKUTotal struct {
	SKU   string `json:"sku"`
	Qty   int64  `json:"qty"`
	Total int64  `json:"total"`
}

// Report is the venue's end-of-show report: the members that answered
// with a verified report, merged; those that answered with an error; and
// those known to the venue that did not answer.
type Report struct {
	Venue   string          `json:"venue"`
	Since   time.Time       `json:"since,omitzero"`
	Made    time.Time       `json:"made"`
	By      string          `json:"by"`
	Members []Summary       `json:"members"`
	Totals  []CurrencyTotal `json:"totals"`
	BySKU   []SKUTotal      `json:"by_sku"`
	// Failed are members whose ledger did not verify (or could not be
	// read): their sales are not in the totals.
	Failed []MemberError `json:"failed"`
	// Missing are members the venue knows that did not answer in time.
	Missing  []string `json:"missing"`
	Complete bool     `json:"complete"`
}

// CurrencyTotal sums the sales in one currency.
type CurrencyTotal struct {
	Currency string `json:"currency"`
	Count    int    `json:"count"`
	Total    int64  `json:"total"`
}

// MemberError is a member that answered without a report.
type MemberError struct {
	Box   string `json:"box"`
	Error string `json:"error"`
}

// merge builds the venue report from the answers by box and the members
// the venue knows.
func merge(venue, by string, since, made time.Time, known []string, answers map[string]reportAnswer) Report {
	r := Report{Venue: venue, Since: since, Made: made, By: by, Members: []Summary{}, Totals: []CurrencyTotal{},
		BySKU: []SKUTotal{}, Failed: []MemberError{}, Missing: []string{}}
	cur := map[string]*CurrencyTotal{}
	sku := map[string]*SKUTotal{}
	for _, a := range answers {
		if a.Report == nil {
			r.Failed = append(r.Failed, MemberError{Box: a.Box, Error: a.Error})
			continue
		}
		s := *a.Report
		s.Box = a.Box // a member speaks for itself only
		r.Members = append(r.Members, s)
		if s.Count == 0 {
			continue
		}
		c := cur[s.Currency]
		if c == nil {
			c = &CurrencyTotal{Currency: s.Currency}
			cur[s.Currency] = c
		}
		c.Count += s.Count
		c.Total += s.Total
		for _, it := range s.BySKU {
			t := sku[it.SKU]
			if t == nil {
				t = &SKUTotal{SKU: it.SKU}
				sku[it.SKU] = t
			}
			t.Qty += it.Qty
			t.Total += it.Total
		}
	}
	for _, b := range known {
		if _, ok := answers[b]; !ok {
			r.Missing = append(r.Missing, b)
		}
	}
	for _, c := range cur {
		r.Totals = append(r.Totals, *c)
	}
	for _, t := range sku {
		r.BySKU = append(r.BySKU, *t)
	}
	slices.SortFunc(r.Members, func(a, b Summary) int { return cmp.Compare(a.Box, b.Box) })
	slices.SortFunc(r.Failed, func(a, b MemberError) int { return cmp.Compare(a.Box, b.Box) })
	slices.SortFunc(r.Totals, func(a, b CurrencyTotal) int { return cmp.Compare(a.Currency, b.Currency) })
	slices.SortFunc(r.BySKU, func(a, b SKUTotal) int { return cmp.Compare(a.SKU, b.SKU) })
	slices.Sort(r.Missing)
	r.Complete = len(r.Missing) == 0 && len(r.Failed) == 0
	return r
}
