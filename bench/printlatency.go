package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"time"

	"fieldkit/internal/bus"
	"fieldkit/internal/httpapi"
	"fieldkit/printer/fake"
	"fieldkit/printer/label"
	"fieldkit/printer/lang"
	"fieldkit/printer/queue"
	"fieldkit/printer/service"
	"fieldkit/printer/template"
)

func init() { register("print-latency", benchPrintLatency) }

// benchPrintLatency measures a pickup label from the HTTP request to its
// last byte arriving at a fake ESC/POS printer on a pseudo-terminal at
// 115200 baud (p50, p99), then how many jobs per minute one printer's
// queue gets through, each confirmed by a status read-back.
func benchPrintLatency(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("print-latency", flag.ContinueOnError)
	n := fs.Int("n", 50, "labels timed one at a time")
	jobs := fs.Int("jobs", 100, "labels queued at once for the throughput figure")
	baud := fs.Int("baud", 115200, "line speed of the printer")
	if err := fs.Parse(args); err != nil {
		return err
	}
	const bench = "print-latency"
	dir, err := os.MkdirTemp("", "print-latency")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	link := filepath.Join(dir, "printer-counter")
	fp, err := fake.New(&fake.Opts{Lang: fake.ESCPOS, WidthDots: 576, Baud: *baud, BufferBytes: 4096, Link: link, NoRender: true})
	if err != nil {
		return err
	}
	defer fp.Close()
	if _, err := fp.OpenPTY(); err != nil {
		return err
	}
	prof := label.Profile{Language: label.ESCPOS, WidthDots: 576}
	cfg := service.Config{"counter": {Profile: prof, Transport: "serial", Path: link, Baud: *baud}}
	log := slog.New(slog.DiscardHandler)
	svc, err := service.New(cfg, service.Deps{DataDir: dir, Bus: bus.New(log), Log: log})
	if err != nil {
		return err
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- svc.Run(rctx) }()
	defer func() { cancel(); <-done }()
	rt := httpapi.NewRouter(httpapi.OpenAuth{}, log)
	svc.Routes(rt)
	srv := httptest.NewServer(rt.Handler())
	defer srv.Close()

	pickup := template.SamplePickup()
	l, err := template.Render(pickup, prof.WithDefaults())
	if err != nil {
		return err
	}
	wire, err := lang.Encode(l, prof.WithDefaults())
	if err != nil {
		return err
	}
	raw, _ := json.Marshal(pickup)
	post := func(id string) error {
		body, _ := json.Marshal(service.JobRequest{ID: id, Pickup: raw})
		resp, err := http.Post(srv.URL+"/api/printers/counter/jobs", "application/json", bytes.NewReader(body))
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			return fmt.Errorf("POST job %s: %s", id, resp.Status)
		}
		return nil
	}
	wait := func(printed int) error {
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		return fp.WaitPrinted(wctx, printed)
	}

	// Warm up: the first job opens the port.
	if err := post("warm-up"); err != nil {
		return err
	}
	if err := wait(1); err != nil {
		return err
	}
	lat := make([]time.Duration, 0, *n)
	for i := range *n {
		t0 := time.Now()
		if err := post(fmt.Sprintf("lat-%d", i)); err != nil {
			return err
		}
		if err := wait(i + 2); err != nil {
			return err
		}
		lat = append(lat, time.Since(t0))
		// Let the worker confirm and go idle, as between real orders.
		if err := waitState(ctx, svc, fmt.Sprintf("lat-%d", i)); err != nil {
			return err
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) float64 {
		return float64(lat[int(p*float64(len(lat)-1)+0.5)]) / float64(time.Millisecond)
	}
	emit(bench, "label_bytes", float64(len(wire)), "bytes")
	emit(bench, "wire_ms", float64(len(wire))*10/float64(*baud)*1000, "ms")
	emit(bench, "p50_ms", pct(0.50), "ms")
	emit(bench, "p99_ms", pct(0.99), "ms")

	base := fp.Printed()
	t0 := time.Now()
	for i := range *jobs {
		if err := post(fmt.Sprintf("tp-%d", i)); err != nil {
			return err
		}
	}
	if err := waitState(ctx, svc, fmt.Sprintf("tp-%d", *jobs-1)); err != nil {
		return err
	}
	el := time.Since(t0)
	if got := fp.Printed() - base; got != *jobs {
		return fmt.Errorf("printer counted %d labels, want %d", got, *jobs)
	}
	emit(bench, "jobs_per_min", float64(*jobs)/el.Minutes(), "jobs/min")
	emit(bench, "wire_limit_jobs_per_min", 60/(float64(len(wire))*10/float64(*baud)), "jobs/min")
	return nil
}

// waitState waits for job id to be confirmed done.
func waitState(ctx context.Context, svc *service.Service, id string) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		j, err := svc.Store().Get(ctx, id)
		if err == nil && j.State == queue.Done {
			return nil
		}
		if err == nil && j.State != queue.Queued && j.State != queue.Printing {
			return fmt.Errorf("job %s ended %s: %s", id, j.State, j.Error)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("job %s not done in time", id)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
