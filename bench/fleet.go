package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"fieldkit/internal/pgtest"
	"fieldkit/sync/ingest"
	"fieldkit/sync/receipts"
)

func init() { register("fleet", benchFleet) }

// benchFleet measures the cloud side: boxes draining at once into one or
// two ingest instances on one PostgreSQL, every signature and link
// verified and every batch committed (synchronous_commit=on) before its
// 200. The batches are read from real signed ledgers and compressed
// before the clock starts, so the figure is the ingest's, not the boxes'.
// Each box keeps one batch in flight, as its uplink does, and sends its
// batches to the instances in turn.
func benchFleet(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("fleet", flag.ContinueOnError)
	total := fs.Int("records", 30_000, "records per case, split evenly over its boxes")
	pgURL := fs.String("postgres", "", "PostgreSQL server URL to use (a database per case is created on it); default a throwaway cluster")
	boxList := fs.String("boxes", "1,10,50", "box counts")
	instList := fs.String("instances", "1,2", "instance counts")
	prof := fs.String("cpuprofile", "", "write a CPU profile of the 50-box, 2-instance case to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var boxCounts, instCounts []int
	for _, p := range []struct {
		s   string
		out *[]int
	}{{*boxList, &boxCounts}, {*instList, &instCounts}} {
		for _, f := range strings.Split(p.s, ",") {
			var n int
			if _, err := fmt.Sscan(f, &n); err != nil || n < 1 {
				return fmt.Errorf("bad count %q", f)
			}
			*p.out = append(*p.out, n)
		}
	}
	dir, err := os.MkdirTemp("", "bench-fleet")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var cluster *pgtest.Cluster
	if *pgURL == "" {
		c, err := pgtest.Start(ctx, nil)
		if err != nil {
			return err
		}
		defer c.Stop()
		*pgURL, cluster = c.URL, c
	}
	if err := describePG(ctx, *pgURL); err != nil {
		return err
	}
	_, cloudKey, _ := ed25519.GenerateKey(nil)
	for _, nb := range boxCounts {
		fleet, err := makeFleet(ctx, filepath.Join(dir, fmt.Sprint(nb)), nb, *total/nb)
		if err != nil {
			return err
		}
		for _, ni := range instCounts {
			stopProf := func() {}
			if nb == 50 && ni == 2 {
				if stopProf, err = startCPUProfile(*prof); err != nil {
					return err
				}
			}
			cpu0, err := cpuNow(cluster)
			if err != nil {
				return err
			}
			db := fmt.Sprintf("fleet_%d_%d", nb, ni)
			rate, err := fleetRun(ctx, *pgURL, db, fleet, ni, cloudKey)
			stopProf()
			if err != nil {
				return fmt.Errorf("%d boxes, %d instances: %w", nb, ni, err)
			}
			// A session's CPU shows in the server's figure once its
			// process has exited and been reaped.
			if err := waitSessionsGone(ctx, *pgURL, db); err != nil {
				return err
			}
			cpu1, err := cpuNow(cluster)
			if err != nil {
				return err
			}
			emit("fleet", fmt.Sprintf("records_per_s_%dbox_%dinst", nb, ni), rate, "records/s")
			// CPU per record, the ingest's and the server's: what the work
			// costs, whatever else the shared machine was running.
			name := fmt.Sprintf("%dbox_%dinst", nb, ni)
			emit("fleet", "ingest_cpu_us_per_record_"+name, float64((cpu1.self-cpu0.self).Microseconds())/float64(*total/nb*nb), "us")
			if cluster != nil {
				emit("fleet", "postgres_cpu_us_per_record_"+name, float64((cpu1.pg-cpu0.pg).Microseconds())/float64(*total/nb*nb), "us")
			}
			if nb == 50 && ni == 2 {
				emit("fleet", "records_per_s", rate, "records/s")
			}
		}
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		var l1 float64
		fmt.Sscan(string(b), &l1)
		emit("fleet", "load_avg_1m_after", l1, "load")
	}
	emit("fleet", "records_per_case", float64(*total), "records")
	return nil
}

// benchBox is one box's ledger, as batches ready to send.
type benchBox struct {
	id      string
	pub     []byte
	batches []benchBatch
	records int
}

type benchBatch struct {
	key   string
	first bool
	last  uint64
	body  []byte
}

func makeFleet(ctx context.Context, dir string, boxes, perBox int) ([]*benchBox, error) {
	fleet := make([]*benchBox, boxes)
	errc := make(chan error, boxes)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for i := range fleet {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			b, err := makeBox(ctx, filepath.Join(dir, fmt.Sprint(i)), fmt.Sprintf("popup-%03d", i), perBox)
			fleet[i] = b
			if err != nil {
				errc <- err
			}
		}()
	}
	wg.Wait()
	close(errc)
	return fleet, <-errc
}

func makeBox(ctx context.Context, dir, id string, n int) (*benchBox, error) {
	l, err := receipts.Open(receipts.Options{Path: filepath.Join(dir, "r.db"), KeyFile: filepath.Join(dir, "r.key"), Box: id,
		BootID: "bench", Sync: receipts.SyncFunc(func() bool { return true }), Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return nil, err
	}
	defer l.Close()
	var wg sync.WaitGroup
	errc := make(chan error, 16)
	pays := []string{"card", "cash", "mobile"}
	for c := 0; c < 16; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := c; i < n; i += 16 {
				o := receipts.Order{ClientID: fmt.Sprintf("c%d", i), Order: fmt.Sprintf("A-%d", i),
					Items: []receipts.Item{{SKU: fmt.Sprintf("TEE-%d", i%7), Qty: 1, Price: 2500}}, Total: 2500, Currency: "EUR", Pay: pays[i%3]}
				if _, _, err := l.Append(ctx, o); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return nil, err
	}
	b := &benchBox{id: id, pub: l.PublicKey().Pub, records: n}
	for after := uint64(0); after < uint64(n); {
		ss, err := l.Unsynced(ctx, after, receipts.DefaultBatchRecords, receipts.DefaultBatchBytes)
		if err != nil {
			return nil, err
		}
		if len(ss) == 0 {
			return nil, fmt.Errorf("box %s: ledger ends at %d", id, after)
		}
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
		for _, s := range ss {
			if err := receipts.WriteLine(zw, s); err != nil {
				return nil, err
			}
		}
		zw.Close()
		last := ss[len(ss)-1].Seq
		b.batches = append(b.batches, benchBatch{key: fmt.Sprintf("%s:%d-%d", id, ss[0].Seq, last), first: ss[0].Seq == 1, last: last, body: buf.Bytes()})
		after = last
	}
	return b, nil
}

// fleetRun drains fleet into n fresh instances on a fresh database and
// returns records/s.
func fleetRun(ctx context.Context, serverURL, dbName string, fleet []*benchBox, n int, key ed25519.PrivateKey) (float64, error) {
	dbURL, err := createDB(ctx, serverURL, dbName)
	if err != nil {
		return 0, err
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	var urls []string
	var tokens []string
	for i := 0; i < n; i++ {
		st, err := ingest.OpenPostgres(ctx, dbURL)
		if err != nil {
			return 0, err
		}
		defer st.Close()
		ing, err := ingest.Open(ingest.Options{Store: st, Key: key, Log: quiet})
		if err != nil {
			return 0, err
		}
		if i == 0 {
			for _, b := range fleet {
				tok, err := ing.Enroll(ctx, b.id, "", b.pub)
				if err != nil {
					return 0, err
				}
				tokens = append(tokens, tok)
			}
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		srv := &http.Server{Handler: ing.Handler()}
		go srv.Serve(ln)
		defer srv.Close()
		urls = append(urls, "http://"+ln.Addr().String()+"/v1/receipts")
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 128}}
	start := time.Now()
	var wg sync.WaitGroup
	errc := make(chan error, len(fleet))
	records := 0
	for bi, b := range fleet {
		records += b.records
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k, bt := range b.batches {
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, urls[(bi+k)%len(urls)], bytes.NewReader(bt.body))
				req.Header.Set("Content-Encoding", "gzip")
				req.Header.Set("Idempotency-Key", bt.key)
				req.Header.Set("Authorization", "Bearer "+tokens[bi])
				resp, err := client.Do(req)
				if err != nil {
					errc <- err
					return
				}
				var r ingest.Response
				err = json.NewDecoder(resp.Body).Decode(&r)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 || r.AckedThrough != bt.last || r.Checkpoint == nil {
					errc <- fmt.Errorf("box %s batch %s: %d %+v %v", b.id, bt.key, resp.StatusCode, r, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	close(errc)
	if err := <-errc; err != nil {
		return 0, err
	}
	// Everything is there, once.
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	var stored, boxes int
	if err := conn.QueryRow(ctx, `SELECT count(*), count(DISTINCT box) FROM records`).Scan(&stored, &boxes); err != nil {
		return 0, err
	}
	if stored != records || boxes != len(fleet) {
		return 0, fmt.Errorf("the database holds %d records of %d boxes, want %d of %d", stored, boxes, records, len(fleet))
	}
	return float64(records) / el.Seconds(), nil
}

func createDB(ctx context.Context, serverURL, name string) (string, error) {
	conn, err := pgx.Connect(ctx, serverURL)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	id := pgx.Identifier{name}.Sanitize()
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+id); err != nil {
		return "", err
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+id); err != nil {
		return "", err
	}
	cfg, err := pgx.ParseConfig(serverURL)
	if err != nil {
		return "", err
	}
	i := strings.Index(serverURL, "/"+cfg.Database)
	if i < 0 {
		return "", errors.New("-postgres: give a URL that names a database, e.g. postgres://user@host/postgres")
	}
	return serverURL[:i] + "/" + name + serverURL[i+len(cfg.Database)+1:], nil
}

// describePG prints the server's version and the settings that decide
// commit cost, for bench/RESULTS.md.
func describePG(ctx context.Context, url string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	var v string
	if err := conn.QueryRow(ctx, `SELECT version()`).Scan(&v); err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "server:", v)
	for _, s := range []string{"synchronous_commit", "fsync", "wal_sync_method", "full_page_writes", "shared_buffers", "wal_buffers", "max_wal_size", "commit_delay"} {
		var val string
		if err := conn.QueryRow(ctx, "SHOW "+s).Scan(&val); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "  %s = %s\n", s, val)
	}
	return nil
}

type cpuTimes struct{ self, pg time.Duration }

// cpuNow reads this process's CPU time (the ingest instances and the
// senders) and the throwaway server's.
func cpuNow(c *pgtest.Cluster) (cpuTimes, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return cpuTimes{}, err
	}
	t := cpuTimes{self: time.Duration(ru.Utime.Nano() + ru.Stime.Nano())}
	if c != nil {
		pg, err := c.CPU()
		if err != nil {
			return t, err
		}
		t.pg = pg
	}
	return t, nil
}

func waitSessionsGone(ctx context.Context, serverURL, db string) error {
	conn, err := pgx.Connect(ctx, serverURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	deadline := time.Now().Add(30 * time.Second)
	for {
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = $1`, db).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d sessions on %s still open 30 s after the run", n, db)
		}
		time.Sleep(10 * time.Millisecond) // polling the server, bounded by the deadline
	}
}
