package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"fieldkit/internal/mqtttest"
)

// floodAgent, when set, is the agent binary the flood test runs instead
// of the one built for the tests (to measure an older build the same way).
var floodAgent = os.Getenv("FIELDKIT_FLOOD_AGENT")

// TestFloodOfSceneRuns is the flood of issue #13 on the real binary,
// with real-time priority allowed when the test runs as root: 10,000 run
// messages a second over MQTT for 10 s, and 64 HTTP clients firing runs
// as fast as they are answered for 10 s. The agent must stay up with at
// most 200 threads and 150 MB resident, refuse what it cannot take with
// a reason (429 and Retry-After; <topic>/error), keep its log short, and
// run a scene normally right afterwards. -short floods for 2 s.
func TestFloodOfSceneRuns(t *testing.T) {
	floodFor := 10 * time.Second
	if testing.Short() {
		floodFor = 2 * time.Second
	}
	if os.Geteuid() != 0 {
		t.Log("not root: timelines cannot take real-time priority here, so the flood does not exercise real-time threads")
	}
	m := mqtttest.StartMosquitto(t)
	dir := t.TempDir()
	scenesDir := filepath.Join(dir, "scenes")
	if err := os.MkdirAll(scenesDir, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		// restart: every accepted fire cancels the running run.
		"drop.yaml": "name: drop\npolicy: restart\nsteps:\n  - {at: 0s, target: cue_lamp, do: \"on\"}\n  - {at: 200ms, target: relay, do: \"on\"}\n  - {at: 400ms, target: cue_lamp, do: \"off\"}\n",
		// queue: fires wait in a bounded queue, the rest are refused.
		"line.yaml": "name: line\npolicy: queue\nsteps:\n  - {at: 0s, target: relay, do: \"off\"}\n  - {at: 50ms, target: relay, do: \"on\"}\n",
		// ignore: fires while it runs are dropped.
		"solo.yaml": "name: solo\npolicy: ignore\nsteps:\n  - {at: 0s, target: cue_lamp, do: \"on\"}\n  - {at: 100ms, publish: {topic: studio/solo, payload: done}}\n",
	}
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(scenesDir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := writeConfig(t, `box: flood
board: sim
mqtt:
  url: `+m.URL()+`
scenes:
  dir: `+scenesDir+`
outputs:
  cue_lamp: {kind: gpio, pin: cue_lamp}
  relay:    {kind: gpio, pin: relay2}
`)
	bin := agentBin
	if floodAgent != "" {
		bin = floodAgent
	}
	p := startAgentBin(t, bin, "--config", cfg)
	p.waitHealthy(t, 10*time.Second)
	pid := p.cmd.Process.Pid

	cl := mqtttest.Connect(t, m.URL(), "flood-watch")
	states := cl.Subscribe("fieldkit/flood/scene/+/state")
	errs := cl.Subscribe("fieldkit/flood/scene/+/run/error")
	mqtttest.Await(t, states, 10*time.Second, "scene states retained", func(m mqtttest.Msg) bool { return strings.Contains(m.Payload, `"idle"`) })
	go drain(states)

	var peakThreads, peakRSS atomic.Int64
	stop := make(chan struct{})
	var watch, flood sync.WaitGroup
	watch.Add(1)
	go func() { // the process, sampled every 50 ms
		defer watch.Done()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			th, rss, err := procStatus(pid)
			if err == nil {
				peakThreads.Store(max(peakThreads.Load(), th))
				peakRSS.Store(max(peakRSS.Load(), rss))
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	var errReplies atomic.Int64
	watch.Add(1)
	go func() {
		defer watch.Done()
		for {
			select {
			case <-stop:
				return
			case <-errs:
				errReplies.Add(1)
			}
		}
	}()

	// MQTT: 10,000 messages a second, from 8 clients side by side, round
	// the scenes.
	const clients, rate = 8, 10000
	var sent atomic.Int64
	for c := 0; c < clients; c++ {
		pub := mqtttest.Connect(t, m.URL(), fmt.Sprintf("flood-shop-%d", c)).Paho()
		flood.Add(1)
		go func() {
			defer flood.Done()
			names := []string{"drop", "line", "solo"}
			// Keep up with the schedule: a late tick sends what is due.
			start := time.Now()
			for mine := 0; time.Since(start) < floodFor; {
				due := int(time.Since(start).Seconds()*rate/clients) - mine
				if due <= 0 {
					time.Sleep(time.Millisecond)
					continue
				}
				for k := 0; k < due; k++ {
					pub.Publish("fieldkit/flood/scene/"+names[(mine+k)%3]+"/run", 0, false, []byte(`{"by":"flood"}`))
				}
				mine += due
				sent.Add(int64(due))
			}
		}()
	}
	// HTTP: 64 clients, each firing as soon as it has its answer.
	codes := map[int]int{}
	var codesMu sync.Mutex
	var retryAfterMissing atomic.Int64
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	end := time.Now().Add(floodFor)
	for c := 0; c < 64; c++ {
		flood.Add(1)
		go func(c int) {
			defer flood.Done()
			name := []string{"drop", "line", "solo"}[c%3]
			for time.Now().Before(end) {
				resp, err := client.Post("http://"+p.http+"/api/scenes/"+name+"/run", "application/json", strings.NewReader(`{"by":"crowd"}`))
				code := 0
				if err == nil {
					code = resp.StatusCode
					if code == http.StatusTooManyRequests && resp.Header.Get("Retry-After") == "" {
						retryAfterMissing.Add(1)
					}
					resp.Body.Close()
				}
				codesMu.Lock()
				codes[code]++
				codesMu.Unlock()
			}
		}(c)
	}
	flood.Wait() // both floods end at their time
	close(stop)
	watch.Wait()
	select {
	case err := <-p.done:
		p.done <- err
		log := p.log.String()
		t.Fatalf("the agent died in the flood (%v) after peak %d threads, %.1f MB resident, %d log lines; HTTP answers %v; log ends:\n%s",
			err, peakThreads.Load(), float64(peakRSS.Load())/1024, strings.Count(log, "\n"), codes, log[max(0, len(log)-600):])
	default:
	}

	fires := metricSum(t, p, "fieldkit_scene_fires_total")
	t.Logf("flood %v: MQTT sent %d (%.0f/s), HTTP answers %v, error replies %d; fires by outcome %v; peak threads %d, peak RSS %.1f MB; log %d lines",
		floodFor, sent.Load(), float64(sent.Load())/floodFor.Seconds(), codes, errReplies.Load(), fires, peakThreads.Load(), float64(peakRSS.Load())/1024, strings.Count(p.log.String(), "\n"))
	if n := sent.Load(); n < int64(floodFor.Seconds()*rate/2) {
		t.Errorf("only %d run messages went out in %v: the flood was not a flood", n, floodFor)
	}
	if th := peakThreads.Load(); th > 200 {
		t.Errorf("peak %d threads, want at most 200", th)
	}
	if rss := peakRSS.Load(); rss > 150*1024 {
		t.Errorf("peak RSS %d kB, want at most 150 MB", rss)
	}
	if codes[0] > 0 {
		t.Errorf("%d HTTP runs got no answer", codes[0])
	}
	if codes[http.StatusTooManyRequests] == 0 || retryAfterMissing.Load() > 0 {
		t.Errorf("HTTP refusals: %d with 429, %d of them without Retry-After", codes[http.StatusTooManyRequests], retryAfterMissing.Load())
	}
	if fires["refused_rate_limit"]+fires["refused_queue_full"] == 0 || errReplies.Load() == 0 {
		t.Errorf("no fire refused with a reason: fires %v, error replies %d", fires, errReplies.Load())
	}
	if lines := strings.Count(p.log.String(), "\n"); lines > 5000 {
		t.Errorf("%d log lines in the flood, want a rate-limited few", lines)
	}

	// Right afterwards, a scene runs normally from start to end.
	waitGroupFor(t, func() bool {
		st := sceneState(t, p, "drop")
		return st.State != "running"
	}, 10*time.Second, "the flood's last runs to end")
	before := sceneState(t, p, "drop").Run
	resp, err := client.Post("http://"+p.http+"/api/scenes/drop/run", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("run after the flood: HTTP %d", resp.StatusCode)
	}
	waitGroupFor(t, func() bool {
		st := sceneState(t, p, "drop")
		return st.Run > before && st.State == "done"
	}, 10*time.Second, "a normal run after the flood")
	var d struct {
		LastRun struct {
			Steps []struct {
				Actual *time.Time `json:"actual"`
				Error  string     `json:"error"`
			} `json:"steps"`
		} `json:"last_run"`
	}
	getJSON(t, "http://"+p.http+"/api/scenes/drop", &d)
	for i, s := range d.LastRun.Steps {
		if s.Actual == nil || s.Error != "" {
			t.Fatalf("run after the flood, step %d: %+v", i+1, s)
		}
	}
}

func drain(c <-chan mqtttest.Msg) {
	for range c {
	}
}

// startAgentBin is startAgent with another binary.
func startAgentBin(t *testing.T, bin string, args ...string) *agentProc {
	t.Helper()
	saved := agentBin
	agentBin = bin
	defer func() { agentBin = saved }()
	return startAgent(t, nil, args...)
}

// procStatus reads a process's thread count and resident memory (kB).
func procStatus(pid int) (threads, rssKB int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "Threads:":
			threads, _ = strconv.ParseInt(f[1], 10, 64)
		case "VmRSS:":
			rssKB, _ = strconv.ParseInt(f[1], 10, 64)
		}
	}
	return threads, rssKB, nil
}

type sceneStatus struct {
	State string `json:"state"`
	Run   uint64 `json:"run"`
}

func sceneState(t *testing.T, p *agentProc, name string) sceneStatus {
	t.Helper()
	var d struct {
		Status sceneStatus `json:"status"`
	}
	getJSON(t, "http://"+p.http+"/api/scenes/"+name, &d)
	return d.Status
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("%s: %v", url, err)
	}
}

// metricSum adds up a counter's series by their outcome label.
func metricSum(t *testing.T, p *agentProc, name string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + p.http + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") {
			continue
		}
		i := strings.Index(line, `outcome="`)
		j := strings.LastIndexByte(line, ' ')
		if i < 0 || j < 0 {
			continue
		}
		label := line[i+len(`outcome="`):]
		label = label[:strings.IndexByte(label, '"')]
		v, _ := strconv.ParseFloat(line[j+1:], 64)
		out[label] += v
	}
	return out
}

// waitGroupFor polls cond until it holds or within passes.
func waitGroupFor(t *testing.T, cond func() bool, within time.Duration, what string) {
	t.Helper()
	for deadline := time.Now().Add(within); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
