package main

import (
	"context"
	"crypto/ed25519"
	"flag"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"time"

	"fieldkit/sync/ingest"
	"fieldkit/sync/receipts"
	"fieldkit/sync/uplink"
)

func init() { register("drain", benchDrain) }

// benchDrain fills a ledger, then drains it over HTTP to a local ingest
// that verifies every signature and link and stores every record.
func benchDrain(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("drain", flag.ContinueOnError)
	n := fs.Int("records", 100_000, "records to drain")
	prof := fs.String("cpuprofile", "", "write a CPU profile of the drain (sender and ingest) to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "bench-drain")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	l, err := receipts.Open(receipts.Options{Path: filepath.Join(dir, "r.db"), KeyFile: filepath.Join(dir, "r.key"), Box: "bench",
		BootID: "bench", Sync: receipts.SyncFunc(func() bool { return true })})
	if err != nil {
		return err
	}
	defer l.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for c := 0; c < 64; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := c; i < *n; i += 64 {
				o := receipts.Order{ClientID: fmt.Sprintf("c%d", i), Order: fmt.Sprintf("A-%d", i),
					Items: []receipts.Item{{SKU: "TEE-BLK-M", Qty: 1, Price: 2500}}, Total: 2500, Currency: "EUR", Pay: "card"}
				if _, _, err := l.Append(ctx, o); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	_, key, _ := ed25519.GenerateKey(nil)
	ing, err := ingest.Open(ingest.Options{DB: filepath.Join(dir, "cloud.db"), Key: key, TrustOnFirstUse: true})
	if err != nil {
		return err
	}
	defer ing.Close()
	srv := httptest.NewServer(ing)
	defer srv.Close()
	up, err := uplink.New(receipts.UplinkConfig{URL: srv.URL}, l, uplink.Deps{})
	if err != nil {
		return err
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	stopProf, err := startCPUProfile(*prof)
	if err != nil {
		cancel()
		return err
	}
	defer stopProf()
	start := time.Now()
	go func() { done <- up.Run(rctx) }()
	for {
		b, err := l.Backlog(ctx)
		if err != nil {
			cancel()
			return err
		}
		if b.Count == 0 {
			break
		}
		if ctx.Err() != nil {
			cancel()
			return ctx.Err()
		}
		time.Sleep(2 * time.Millisecond)
	}
	el := time.Since(start)
	stopProf()
	cancel()
	<-done
	st, err := ing.Box(ctx, "bench")
	if err != nil {
		return err
	}
	if st.Count != *n || st.Seq != uint64(*n) {
		return fmt.Errorf("ingest holds %d records through seq %d, want %d", st.Count, st.Seq, *n)
	}
	emit("drain", "records_per_s", float64(*n)/el.Seconds(), "records/s")
	emit("drain", "records", float64(*n), "records")
	emit("drain", "seconds", el.Seconds(), "s")
	return nil
}
