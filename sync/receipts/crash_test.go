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
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

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
	const (
		clients = 16
		kills   = 20
	)
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

	hc := &http.Client{Timeout: 5 * time.Second}
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "run", "--data", data, "--http", addr, "--mqtt-listen", mqttAddr)
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

	type ack struct {
		seq  uint64
		hash string
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
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()

	out, err := exec.Command(bin, "receipts", "--data", data, "verify").CombinedOutput()
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

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
