package receipts_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"fieldkit/printer/fake"
	"fieldkit/sync/receipts"
)

// TestCrashKill9 runs the agent itself (firmware-agent, demo config,
// receipts on by default) as a separate process, posts receipts to its
// HTTP API from 16 clients, and kill -9s it at random moments 20 times,
// restarting it each time. Clients retry with the same client_id until
// they get a 2xx. Afterwards `firmware-agent receipts verify` must pass,
// and every acknowledged receipt must be in the ledger, unchanged, with no
// gap and no duplicate.
func TestCrashKill9(t *testing.T) {
	crashRun(t, crashOpts{clients: 16, kills: 20})
}

// TestCrashKill9PickupLabels is the same run with pickup labels on, on a
// printer outside the agent (a fake ESC/POS printer on TCP, so that what
// it printed survives the kills): every acknowledged sale's label must be
// printed exactly once once the last agent has drained its outbox, none
// lost, none doubled. Half the clients of the plain run, so that the
// printer prints the run's labels within the test's time.
func TestCrashKill9PickupLabels(t *testing.T) {
	if testing.Short() {
		t.Skip("kill -9 run")
	}
	crashRun(t, crashOpts{clients: 8, kills: 10, labels: true})
}

type ack struct {
	seq  uint64
	hash string
}

type crashOpts struct {
	clients, kills int
	labels         bool
	pace           time.Duration // between one client's sales
}

func crashRun(t *testing.T, o crashOpts) {
	clients, kills := o.clients, o.kills
	dir := t.TempDir()
	bin := filepath.Join(dir, "firmware-agent")
	if out, err := exec.Command("go", "build", "-o", bin, "fieldkit/firmware-agent").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	data := filepath.Join(dir, "data")
	addr, mqttAddr := freePort(t), freePort(t)
	logf, err := os.Create(filepath.Join(dir, "agent.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			if len(b) > 4000 {
				b = b[len(b)-4000:]
			}
			t.Logf("agent log tail:\n%s", b)
		}
	})

	var fp *fake.Printer
	cliArgs := []string{"receipts", "--data", data}
	args := []string{"run", "--data", data, "--http", addr, "--mqtt-listen", mqttAddr}
	box := "demo"
	if o.labels {
		fp, err = fake.New(&fake.Opts{Lang: fake.ESCPOS, WidthDots: 576, NoRender: true})
		if err != nil {
			t.Fatal(err)
		}
		defer fp.Close()
		paddr, err := fp.ListenTCP("127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		box = "crash"
		cfg := filepath.Join(dir, "agent.yaml")
		os.WriteFile(cfg, []byte(fmt.Sprintf(`box: crash
board: sim
printers:
  counter: {language: escpos, width_dots: 576, transport: tcp, address: %q, status_timeout: 300ms, poll_interval: 50ms}
receipts:
  pickup_printer: counter
`, paddr)), 0o644)
		args = append(args, "--config", cfg)
		cliArgs = append(cliArgs, "--config", cfg)
	}
	hc := &http.Client{Timeout: 5 * time.Second}
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, args...)
		cmd.Dir = dir
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(20 * time.Second)
		for {
			resp, err := hc.Get("http://" + addr + "/api/receipts?after=0&limit=1")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return cmd
				}
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatal("agent did not start")
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	var (
		mu    sync.Mutex
		acked = map[string]ack{}
		stop  atomic.Bool
		wg    sync.WaitGroup
	)
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; !stop.Load(); n++ {
				id := fmt.Sprintf("pos%d-%05d", c, n)
				body, _ := json.Marshal(receipts.Order{ClientID: id, Order: id, Items: []receipts.Item{{SKU: "TEE", Qty: 1, Price: int64(100 + c)}},
					Total: int64(100 + c), Currency: "EUR", Pay: "card"})
				for {
					resp, err := hc.Post("http://"+addr+"/api/receipts", "application/json", bytes.NewReader(body))
					if err == nil {
						var rc receipts.Receipt
						derr := json.NewDecoder(resp.Body).Decode(&rc)
						resp.Body.Close()
						if resp.StatusCode/100 == 2 && derr == nil {
							mu.Lock()
							if prev, ok := acked[id]; ok && prev != (ack{rc.Seq, rc.Hash}) {
								t.Errorf("%s acknowledged twice differently: %v then %v", id, prev, rc.Seq)
							}
							acked[id] = ack{rc.Seq, rc.Hash}
							mu.Unlock()
							break
						}
						if resp.StatusCode/100 == 4 {
							t.Errorf("%s: %d", id, resp.StatusCode)
							return
						}
					}
					if stop.Load() && err != nil {
						return // the last agent is gone; this one was never acknowledged
					}
					time.Sleep(3 * time.Millisecond) // client retry pacing
				}
				if o.pace > 0 {
					time.Sleep(o.pace) // client sale pacing, not a wait for a condition
				}
			}
		}()
	}
	for i := 0; i < kills; i++ {
		cmd := start()
		time.Sleep(time.Duration(20+rand.IntN(120)) * time.Millisecond) // a random moment, not a condition
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
	}
	cmd := start()
	time.Sleep(100 * time.Millisecond) // let clients finish their pending retries
	stop.Store(true)
	wg.Wait()
	if o.labels {
		mu.Lock()
		checkLabels(t, hc, addr, box, fp, acked)
		mu.Unlock()
	}
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()

	out, err := exec.Command(bin, append(cliArgs, "verify")...).CombinedOutput()
	if err != nil {
		t.Fatalf("firmware-agent receipts verify: %v\n%s", err, out)
	}
	t.Logf("verify: %s", bytes.TrimSpace(out))
	r, err := receipts.OpenReader(filepath.Join(data, "receipts.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rep, err := r.Verify(context.Background(), receipts.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("ledger does not verify after %d kills: %v", kills, rep.Problem)
	}
	byClient := map[string]ack{}
	err = r.Range(context.Background(), 0, 0, func(s receipts.Signed) error {
		rec, err := s.Decode()
		if err != nil {
			return err
		}
		if _, dup := byClient[rec.ClientID]; dup {
			return fmt.Errorf("client_id %s stored twice", rec.ClientID)
		}
		byClient[rec.ClientID] = ack{s.Seq, s.Hash}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for id, a := range acked {
		if got, ok := byClient[id]; !ok || got != a {
			t.Errorf("acknowledged %s (seq %d) lost or changed: %v", id, a.seq, got)
		}
	}
	if len(acked) < kills {
		t.Fatalf("only %d receipts acknowledged; the test did not exercise the ledger", len(acked))
	}
	t.Logf("%d kills, %d acknowledged receipts, %d stored, head seq %d", kills, len(acked), rep.Count, rep.Last)
}

// checkLabels waits for the last agent to print every acknowledged
// sale's pickup label and checks that each was printed exactly once. A
// job the printer queue marks uncertain (the agent was killed while its
// bytes were on the wire) is resolved as the crew would: reprinted only
// if the printer shows it never came out.
func checkLabels(t *testing.T, hc *http.Client, addr, box string, fp *fake.Printer, acked map[string]ack) {
	t.Helper()
	receiptNo := regexp.MustCompile(`^Receipt #(\d+)`)
	printed := func() map[uint64]int {
		out := map[uint64]int{}
		for _, l := range fp.Labels() {
			for _, tx := range l.Texts() {
				if m := receiptNo.FindStringSubmatch(tx); m != nil {
					n, _ := strconv.ParseUint(m[1], 10, 64)
					out[n]++
				}
			}
		}
		return out
	}
	jobState := func(seq uint64) string {
		resp, err := hc.Get(fmt.Sprintf("http://%s/api/jobs/receipt-%s-%d", addr, box, seq))
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		var j struct {
			State string `json:"state"`
		}
		json.NewDecoder(resp.Body).Decode(&j)
		return j.State
	}
	want := map[uint64]bool{}
	for _, a := range acked {
		want[a.seq] = true
	}
	reprinted := map[uint64]bool{}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		got := printed()
		missing := 0
		for seq := range want {
			if got[seq] == 0 {
				missing++
				if st := jobState(seq); st == "uncertain" && !reprinted[seq] {
					resp, err := hc.Post(fmt.Sprintf("http://%s/api/jobs/receipt-%s-%d/reprint", addr, box, seq), "application/json", nil)
					if err == nil {
						resp.Body.Close()
						reprinted[seq] = true
					}
				}
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d acknowledged sales have no pickup label printed", missing, len(want))
		}
		time.Sleep(50 * time.Millisecond) // polling the printer's output
	}
	got := printed()
	for seq, n := range got {
		if n != 1 {
			t.Errorf("receipt %d's pickup label printed %d times", seq, n)
		}
	}
	t.Logf("%d acknowledged sales, %d pickup labels printed (%d uncertain jobs reprinted by hand), printer stats %+v",
		len(want), len(got), len(reprinted), fp.Stats())
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
