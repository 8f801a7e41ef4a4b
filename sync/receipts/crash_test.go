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

// TestCrashKill9 runs the ledger's HTTP API as a separate process, posts
// receipts from 16 clients, and kill -9s the process at random moments 20
// times, restarting it each time. Clients retry with the same client_id
// until they get a 2xx. Afterwards every acknowledged receipt must be in
// the ledger, unchanged, and the chain must verify with no gap and no
// duplicate.
func TestCrashKill9(t *testing.T) {
	const (
		clients = 16
		kills   = 20
	)
	dir := t.TempDir()
	bin := filepath.Join(dir, "crashagent")
	if out, err := exec.Command("go", "build", "-o", bin, "fieldkit/sync/receipts/internal/crashagent").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	data := filepath.Join(dir, "data")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	start := func() *exec.Cmd {
		ready := filepath.Join(dir, "ready")
		os.Remove(ready)
		cmd := exec.Command(bin, "-data", data, "-listen", addr, "-ready", ready)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			if _, err := os.Stat(ready); err == nil {
				return cmd
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				t.Fatal("agent did not start")
			}
			time.Sleep(2 * time.Millisecond)
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
	hc := &http.Client{Timeout: 5 * time.Second}
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
