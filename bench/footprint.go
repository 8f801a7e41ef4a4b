package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

func init() { register("footprint", benchFootprint) }

// benchFootprint builds the agent, then measures the binary size, the
// time from exec to /healthz 200 for the demo, and the resident memory of
// the idle demo.
func benchFootprint(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("footprint", flag.ContinueOnError)
	runs := fs.Int("runs", 5, "start-ups to time")
	idle := fs.Duration("idle", 10*time.Second, "how long the demo idles before RSS is read")
	bin := fs.String("bin", "", "a built firmware-agent (default: build one)")
	wrap := fs.String("wrap", "", "run the binary through this emulator (qemu-aarch64-static) for a cross-built one")
	if err := fs.Parse(args); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "fieldkit-footprint")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if *bin == "" {
		*bin = filepath.Join(dir, "firmware-agent")
		out, err := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", *bin, "./firmware-agent").CombinedOutput()
		if err != nil {
			return fmt.Errorf("build: %v\n%s", err, out)
		}
	}
	st, err := os.Stat(*bin)
	if err != nil {
		return err
	}
	emit("footprint", "binary_bytes", float64(st.Size()), "bytes")

	var starts []time.Duration
	var rss float64
	for i := 0; i < *runs; i++ {
		d, kb, err := startDemo(ctx, *wrap, *bin, filepath.Join(dir, fmt.Sprint("data", i)), i == *runs-1, *idle)
		if err != nil {
			return err
		}
		starts = append(starts, d)
		if kb > 0 {
			rss = kb
		}
	}
	sort.Slice(starts, func(i, j int) bool { return starts[i] < starts[j] })
	emit("footprint", "start_to_healthz_p50_ms", float64(starts[len(starts)/2].Microseconds())/1000, "ms")
	emit("footprint", "start_to_healthz_max_ms", float64(starts[len(starts)-1].Microseconds())/1000, "ms")
	emit("footprint", "idle_rss_kib", rss, "KiB")
	return nil
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func startDemo(ctx context.Context, wrap, bin, data string, measureRSS bool, idle time.Duration) (time.Duration, float64, error) {
	h, err := freeAddr()
	if err != nil {
		return 0, 0, err
	}
	m, err := freeAddr()
	if err != nil {
		return 0, 0, err
	}
	args := []string{"run", "--data", data, "--http", h, "--mqtt-listen", m}
	name := bin
	if wrap != "" {
		name, args = wrap, append([]string{bin}, args...)
	}
	cmd := exec.CommandContext(ctx, name, args...)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	c := &http.Client{Timeout: time.Second}
	var took time.Duration
	for {
		resp, err := c.Get("http://" + h + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				took = time.Since(start)
				break
			}
		}
		if time.Since(start) > 30*time.Second {
			return 0, 0, fmt.Errorf("demo not healthy after 30 s")
		}
		time.Sleep(2 * time.Millisecond)
	}
	if !measureRSS {
		return took, 0, nil
	}
	select {
	case <-ctx.Done():
		return 0, 0, ctx.Err()
	case <-time.After(idle):
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			kb, _ := strconv.ParseFloat(f[1], 64)
			return took, kb, nil
		}
	}
	return took, 0, fmt.Errorf("no VmRSS in /proc/%d/status", cmd.Process.Pid)
}
