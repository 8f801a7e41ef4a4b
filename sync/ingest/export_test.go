package ingest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

	"fieldkit/internal/pgtest"
	"fieldkit/sync/receipts"
)

// For the external tests (which may import the uplink, itself an
// importer of this package).

// ChildEnv is childEnv.
const ChildEnv = childEnv

// PGCluster is the package's throwaway PostgreSQL.
func PGCluster() *pgtest.Cluster { return cluster }

// QueryRow runs a query on a PostgreSQL store.
func QueryRow(ctx context.Context, st Store, q string, args ...any) pgx.Row {
	return st.(*pgStore).pool.QueryRow(ctx, q, args...)
}

// childEnv makes the test binary an ingest instance (see runChild): the
// fleet test kills one with SIGKILL mid-run, which only a process of its
// own can stand for.
const childEnv = "FIELDKIT_INGEST_CHILD"

func runChild() int {
	ctx := context.Background()
	st, err := OpenPostgres(ctx, os.Getenv("FIELDKIT_INGEST_PG"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	k, err := receipts.LoadKey(os.Getenv("FIELDKIT_INGEST_KEY"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	s, err := Open(Options{Store: st, Key: k.Priv, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ln, err := net.Listen("tcp", os.Getenv("FIELDKIT_INGEST_LISTEN"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("ready")
	// Runs until killed, as the test means it to.
	if err := http.Serve(ln, s.Handler()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// SumReports is what the fleet report must be: the sum of the boxes' own
// Z reports (venues[i] is zs[i]'s), by box, SKU, payment and hour.
func SumReports(zs []*receipts.ZReport, venues []string) *FleetReport {
	want := &FleetReport{Verified: true}
	sku := map[string]*receipts.SKUTotal{}
	pay := map[string]*receipts.PayTotal{}
	hours := map[time.Time]*HourTotal{}
	for i, z := range zs {
		want.Count += z.Count
		want.Total += z.Total
		want.ByBox = append(want.ByBox, BoxTotal{Box: z.Box, Venue: venues[i], Currency: z.Currency, Count: z.Count, Total: z.Total})
		for _, s := range z.BySKU {
			if sku[s.SKU] == nil {
				sku[s.SKU] = &receipts.SKUTotal{SKU: s.SKU}
			}
			sku[s.SKU].Qty += s.Qty
			sku[s.SKU].Total += s.Total
		}
		for _, p := range z.ByPay {
			if pay[p.Pay] == nil {
				pay[p.Pay] = &receipts.PayTotal{Pay: p.Pay}
			}
			pay[p.Pay].Count += p.Count
			pay[p.Pay].Total += p.Total
		}
		for _, m := range z.ByMinute {
			h := m.Minute.Truncate(time.Hour)
			if hours[h] == nil {
				hours[h] = &HourTotal{Hour: h}
			}
			hours[h].Count += m.Count
			hours[h].Total += m.Total
		}
	}
	sort.Slice(want.ByBox, func(i, j int) bool { return want.ByBox[i].Box < want.ByBox[j].Box })
	for _, s := range sku {
		want.BySKU = append(want.BySKU, *s)
	}
	sort.Slice(want.BySKU, func(i, j int) bool { return want.BySKU[i].SKU < want.BySKU[j].SKU })
	for _, p := range pay {
		want.ByPay = append(want.ByPay, *p)
	}
	sort.Slice(want.ByPay, func(i, j int) bool { return want.ByPay[i].Pay < want.ByPay[j].Pay })
	for _, h := range hours {
		want.ByHour = append(want.ByHour, *h)
	}
	sort.Slice(want.ByHour, func(i, j int) bool { return want.ByHour[i].Hour.Before(want.ByHour[j].Hour) })
	return want
}
