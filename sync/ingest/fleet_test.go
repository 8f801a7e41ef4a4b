package ingest_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"fieldkit/sync/ingest"
	"fieldkit/sync/receipts"
	"fieldkit/sync/uplink"
)

// instance is one ingest process behind the test's balancer.
type instance struct {
	addr string
	env  []string
	mu   sync.Mutex
	cmd  *exec.Cmd
}

func (in *instance) start(t *testing.T) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append(in.env, ingest.ChildEnv+"=1", "FIELDKIT_INGEST_LISTEN="+in.addr)...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan bool, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		ready <- line == "ready\n"
		io.Copy(io.Discard, out)
	}()
	select {
	case ok := <-ready:
		if !ok {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatal("ingest instance did not start")
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal("ingest instance not ready within 30 s")
	}
	in.mu.Lock()
	in.cmd = cmd
	in.mu.Unlock()
}

func (in *instance) kill() {
	in.mu.Lock()
	cmd := in.cmd
	in.cmd = nil
	in.mu.Unlock()
	if cmd != nil {
		cmd.Process.Kill()
		cmd.Wait()
	}
}

// balancer spreads batches over the instances round robin and
// misbehaves on a fixed rhythm: a 500 without forwarding, a connection
// dropped before forwarding, and one dropped after the instance answered
// (committed, the box never hears it). An instance that is down is a 502,
// as from a real load balancer.
type balancer struct {
	backends []string
	n        atomic.Int64
	faults   sync.Map // kind → *atomic.Int64
	client   *http.Client
}

func (b *balancer) count(kind string) {
	v, _ := b.faults.LoadOrStore(kind, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
}

func (b *balancer) get(kind string) int64 {
	v, ok := b.faults.Load(kind)
	if !ok {
		return 0
	}
	return v.(*atomic.Int64).Load()
}

func (b *balancer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	i := b.n.Add(1)
	hijack := func() {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	}
	switch {
	case i%11 == 0:
		b.count("500")
		http.Error(w, `{"error":"injected"}`, http.StatusInternalServerError)
		return
	case i%13 == 0:
		b.count("drop-request")
		hijack()
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	target := b.backends[i%int64(len(b.backends))]
	req, _ := http.NewRequestWithContext(r.Context(), r.Method, "http://"+target+r.URL.Path, bytes.NewReader(body))
	req.Header = r.Header.Clone()
	resp, err := b.client.Do(req)
	if err != nil {
		b.count("502")
		http.Error(w, `{"error":"backend down"}`, http.StatusBadGateway)
		return
	}
	answer, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		b.count("502")
		http.Error(w, `{"error":"backend died"}`, http.StatusBadGateway)
		return
	}
	if i%17 == 0 {
		b.count("drop-answer")
		hijack()
		return
	}
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	w.Write(answer)
}

func TestFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("the fleet test takes half a minute")
	}
	const boxes, perBox, appenders = 50, 100, 8
	begin := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	url := ingest.PGCluster().NewDB(t)

	// The cloud's checkpoint key, shared by both instances.
	cloudKey, _, err := receipts.LoadOrCreateKey(filepath.Join(dir, "cloud.key"))
	if err != nil {
		t.Fatal(err)
	}
	cloudPEM := filepath.Join(dir, "cloud.pem")
	if err := os.WriteFile(cloudPEM, receipts.PublicPEM(cloudKey.Pub), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := ingest.OpenPostgres(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	admin, err := ingest.Open(ingest.Options{Store: st, Key: cloudKey.Priv})
	if err != nil {
		t.Fatal(err)
	}

	// The boxes: real ledgers, each its own key and chain, sales of
	// varied items and payments.
	type box struct {
		id    string
		dir   string
		venue string
		l     *receipts.Ledger
		token string
		pub   ed25519.PublicKey
	}
	fleet := make([]*box, boxes)
	var wg sync.WaitGroup
	errc := make(chan error, boxes*appenders)
	skus := []string{"TEE-BLK-M", "TEE-WHT-L", "CAP", "TOTE", "PIN"}
	pays := []string{"card", "cash", "mobile"}
	for i := range fleet {
		bd := filepath.Join(dir, fmt.Sprintf("box%02d", i))
		l, err := receipts.Open(receipts.Options{Path: filepath.Join(bd, "r.db"), KeyFile: filepath.Join(bd, "r.key"), Box: fmt.Sprintf("popup-%02d", i),
			BootID: "b", Sync: receipts.SyncFunc(func() bool { return true }), Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		fleet[i] = &box{id: l.Box(), dir: bd, venue: fmt.Sprintf("venue-%d", i%7), l: l, pub: l.PublicKey().Pub}
		if fleet[i].token, err = admin.Enroll(ctx, l.Box(), fleet[i].venue, fleet[i].pub); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(bd, "token"), []byte(fleet[i].token+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		for c := 0; c < appenders; c++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := c; j < perBox; j += appenders {
					n := int64(1 + (i+j)%3)
					price := int64(500 + 250*((i*j)%9))
					sku := skus[(i+j)%len(skus)]
					o := receipts.Order{ClientID: fmt.Sprintf("pos%d-%d", c, j), Order: fmt.Sprintf("A-%d", j),
						Items: []receipts.Item{{SKU: sku, Qty: n, Price: price}, {SKU: "BAG", Qty: 1, Price: 10}},
						Total: n*price + 10, Currency: "EUR", Pay: pays[(i*7+j)%len(pays)]}
					if _, _, err := l.Append(ctx, o); err != nil {
						errc <- err
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	t.Logf("%d ledgers of %d records made in %s", boxes, perBox, time.Since(begin).Round(time.Millisecond))
	begin = time.Now()

	// Two ingest instances on one database, behind a faulty balancer.
	env := []string{"FIELDKIT_INGEST_PG=" + url, "FIELDKIT_INGEST_KEY=" + filepath.Join(dir, "cloud.key")}
	insts := make([]*instance, 2)
	for i := range insts {
		insts[i] = &instance{addr: freeAddr(t), env: env}
		insts[i].start(t)
		defer insts[i].kill()
	}
	bal := &balancer{backends: []string{insts[0].addr, insts[1].addr},
		client: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 20 * time.Second}}
	front := httptest.NewServer(bal)
	defer front.Close()

	runCtx, stop := context.WithCancel(ctx)
	var runs sync.WaitGroup
	ups := make([]*uplink.Uplink, boxes)
	for i, b := range fleet {
		up, err := uplink.New(receipts.UplinkConfig{URL: front.URL + "/v1/receipts", TokenFile: filepath.Join(dir, fmt.Sprintf("box%02d", i), "token"),
			CloudKeyFile: cloudPEM, BatchRecords: 20, BatchBytes: 256 << 10}, b.l, uplink.Deps{
			HTTP: &http.Client{Timeout: 20 * time.Second}, RequestTimeout: 20 * time.Second,
			// Retry waits of a few to a few hundred ms: the faults are
			// many and the test is bounded.
			Rand: func() float64 { return 0.005 },
			Log:  slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		ups[i] = up
		runs.Add(1)
		go func() { defer runs.Done(); up.Run(runCtx) }()
	}
	defer func() { stop(); runs.Wait() }()

	total := boxes * perBox
	stored := func() int {
		var n int
		if err := ingest.QueryRow(ctx, st, `SELECT count(*) FROM records`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for !cond() {
			if ctx.Err() != nil {
				t.Fatalf("timed out waiting for %s (%d of %d records stored)", what, stored(), total)
			}
			time.Sleep(20 * time.Millisecond) // polling the database, bounded by ctx
		}
	}
	// Kill instance 0 (SIGKILL: its transactions die with its sessions)
	// a third of the way, restart it once more records arrived through
	// the other.
	waitFor("a third of the records", func() bool { return stored() >= total/3 })
	insts[0].kill()
	mark := stored()
	waitFor("records while instance 0 is down", func() bool { return stored() >= mark+total/10 || stored() == total })
	insts[0].start(t)
	waitFor("the fleet to drain", func() bool {
		for _, b := range fleet {
			bl, err := b.l.Backlog(ctx)
			if err != nil || bl.Count > 0 {
				return false
			}
		}
		return true
	})
	stop()
	runs.Wait()
	t.Logf("drained in %s", time.Since(begin).Round(time.Millisecond))
	t.Logf("faults: 500=%d drop-request=%d drop-answer=%d 502=%d; requests %d", bal.get("500"), bal.get("drop-request"), bal.get("drop-answer"), bal.get("502"), bal.n.Load())
	if bal.get("500") == 0 || bal.get("drop-request") == 0 || bal.get("drop-answer") == 0 {
		t.Fatal("not every fault happened")
	}

	// Every record stored exactly once, every chain verifies from the
	// database and ends where the box's ledger ends.
	if n := stored(); n != total {
		t.Fatalf("%d records stored, want %d", n, total)
	}
	var zs []*receipts.ZReport
	var venues []string
	for _, b := range fleet {
		seqs, err := admin.Seqs(ctx, b.id)
		if err != nil || len(seqs) != perBox || seqs[0] != 1 || seqs[perBox-1] != perBox {
			t.Fatalf("box %s: %d seqs %v", b.id, len(seqs), err)
		}
		rep, err := admin.VerifyBox(ctx, b.id)
		if err != nil || !rep.OK() || rep.Count != perBox {
			t.Fatalf("box %s from the database: %+v %v", b.id, rep, err)
		}
		r, err := receipts.OpenReader(filepath.Join(b.dir, "r.db"))
		if err != nil {
			t.Fatal(err)
		}
		z, err := r.Report(ctx, time.Time{}, receipts.VerifyOptions{First: b.pub})
		vr, verr := r.Verify(ctx, receipts.VerifyOptions{First: b.pub})
		r.Close()
		if err != nil || verr != nil {
			t.Fatal(err, verr)
		}
		if vr.Head != rep.Head {
			t.Fatalf("box %s: the cloud's head %s, the ledger's %s", b.id, rep.Head, vr.Head)
		}
		zs, venues = append(zs, z), append(venues, b.venue)
	}
	want := ingest.SumReports(zs, venues)
	got, err := admin.Report(ctx, time.Time{}, true)
	if err != nil {
		t.Fatal(err)
	}
	want.Verified = true
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("fleet report\n got %+v\nwant %+v", got, want)
	}
	// What the operators see: every box heard from, nothing left behind.
	status, err := st.Boxes(ctx)
	if err != nil || len(status) != boxes {
		t.Fatalf("%d boxes listed, want %d (%v)", len(status), boxes, err)
	}
	for _, b := range status {
		if b.AckedThrough != perBox || b.BoxHead != perBox || b.Backlog != 0 || b.LastContact.IsZero() || !b.Enrolled {
			t.Fatalf("operators see %+v", b)
		}
	}
	alarms, err := st.Alarms(ctx, 10)
	if err != nil || len(alarms) != 0 {
		t.Fatalf("alarms in a clean run: %v %v", alarms, err)
	}
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
