package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"fieldkit/sync/receipts"
)

func init() { register("receipts", benchReceipts) }

// benchReceipts measures durable signed appends from concurrent clients,
// with group commit and with one transaction per receipt, in one run.
func benchReceipts(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("receipts", flag.ContinueOnError)
	clients := fs.Int("clients", 64, "concurrent clients")
	dur := fs.Duration("duration", 3*time.Second, "time per mode")
	dir := fs.String("dir", "", "directory for the ledgers (default a temp dir; use the box's disk)")
	prof := fs.String("cpuprofile", "", "write a CPU profile of the group-commit run to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "bench-receipts")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		*dir = d
	}
	stopProf, err := startCPUProfile(*prof)
	if err != nil {
		return err
	}
	group, lat, err := appendRun(ctx, filepath.Join(*dir, "group"), 0, *clients, *dur)
	stopProf()
	if err != nil {
		return err
	}
	naive, _, err := appendRun(ctx, filepath.Join(*dir, "naive"), 1, *clients, *dur)
	if err != nil {
		return err
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	p := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))].Microseconds()) }
	emit("receipts", "group_commit_per_s", group, "records/s")
	emit("receipts", "naive_per_s", naive, "records/s")
	emit("receipts", "speedup", group/naive, "x")
	emit("receipts", "append_p50_us", p(0.50), "us")
	emit("receipts", "append_p99_us", p(0.99), "us")
	emit("receipts", "clients", float64(*clients), "clients")
	return nil
}

// startCPUProfile writes a CPU profile to path until the returned func is
// called; an empty path profiles nothing.
func startCPUProfile(path string) (func(), error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

func appendRun(ctx context.Context, dir string, maxBatch, clients int, dur time.Duration) (float64, []time.Duration, error) {
	l, err := receipts.Open(receipts.Options{Path: filepath.Join(dir, "r.db"), KeyFile: filepath.Join(dir, "r.key"), Box: "bench",
		MaxBatch: maxBatch, BootID: "bench", Sync: receipts.SyncFunc(func() bool { return true })})
	if err != nil {
		return 0, nil, err
	}
	defer l.Close()
	var n atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	var firstErr atomic.Value
	ctx, cancel := context.WithTimeout(ctx, dur)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for i := 0; ctx.Err() == nil; i++ {
				o := receipts.Order{ClientID: fmt.Sprintf("pos%d-%d", c, i), Order: fmt.Sprintf("A-%d-%d", c, i),
					Items: []receipts.Item{{SKU: "TEE-BLK-M", Qty: 1, Price: 2500}, {SKU: "CAP", Qty: 2, Price: 1200}},
					Total: 4900, Currency: "EUR", Pay: "card", Buyer: &receipts.Buyer{Name: "Sam R."}}
				t0 := time.Now()
				_, _, err := l.Append(context.Background(), o)
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				mine = append(mine, time.Since(t0))
				n.Add(1)
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	el := time.Since(start)
	if e := firstErr.Load(); e != nil {
		return 0, nil, e.(error)
	}
	return float64(n.Load()) / el.Seconds(), lat, nil
}
