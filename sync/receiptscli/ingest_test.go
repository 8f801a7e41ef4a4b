package receiptscli

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fieldkit/internal/pgtest"
	"fieldkit/sync/ingest"
	"fieldkit/sync/receipts"
)

// `receipts ingest` end to end on PostgreSQL: the checkpoint key made,
// a box enrolled with its PEM, the server started with --postgres, a
// batch accepted only with the box's token, the checkpoint signed with
// the key the boxes were given.
func TestIngestOnPostgres(t *testing.T) {
	pg := pgtest.New(t, nil)
	url := pg.NewDB(t)
	dir := t.TempDir()
	l, err := receipts.Open(receipts.Options{Path: filepath.Join(dir, "r.db"), KeyFile: filepath.Join(dir, "r.key"), Box: "popup-1", BootID: "b",
		Sync: receipts.SyncFunc(func() bool { return true })})
	if err != nil {
		t.Fatal(err)
	}
	var ss []receipts.Signed
	for i := 1; i <= 3; i++ {
		s, _, err := l.Append(context.Background(), receipts.Order{ClientID: fmt.Sprint("p", i), Order: "A", Items: []receipts.Item{{SKU: "TEE", Qty: 1, Price: 900}}, Total: 900, Currency: "EUR", Pay: "card"})
		if err != nil {
			t.Fatal(err)
		}
		ss = append(ss, s)
	}
	os.WriteFile(filepath.Join(dir, "box.pem"), receipts.PublicPEM(l.PublicKey().Pub), 0o644)
	l.Close()
	run := func(ctx context.Context, args ...string) (string, string, error) {
		var out, errb bytes.Buffer
		err := RunCLI(ctx, args, &out, &errb, Env{Box: "x", DataDir: dir})
		return out.String(), errb.String(), err
	}
	keyFile := filepath.Join(dir, "cloud.key")
	cloudPEM, _, err := run(context.Background(), "ingest", "key", "--key", keyFile)
	if err != nil {
		t.Fatal(err)
	}
	cloudPub, err := receipts.ParsePublicPEM([]byte(cloudPEM))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := run(context.Background(), "ingest", "--postgres", url); err == nil || !strings.Contains(err.Error(), "--key") {
		t.Fatalf("--postgres without --key: %v", err)
	}
	token, msg, err := run(context.Background(), "ingest", "enroll", "--box", "popup-1", "--venue", "Hall B", "--pubkey", filepath.Join(dir, "box.pem"), "--postgres", url)
	if err != nil || !strings.Contains(msg, "enrolled box popup-1") {
		t.Fatalf("%v %s", err, msg)
	}
	token = strings.TrimSpace(token)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, _, err := run(ctx, "ingest", "--listen", addr, "--postgres", url, "--key", keyFile)
		done <- err
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the ingest did not come up: %v", err)
		}
		time.Sleep(20 * time.Millisecond) // polling for the server, bounded by the deadline
	}
	send := func(tok string) (int, ingest.Response) {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		for _, s := range ss {
			receipts.WriteLine(zw, s)
		}
		zw.Close()
		req, _ := http.NewRequest("POST", "http://"+addr+"/v1/receipts", &buf)
		req.Header.Set("Content-Encoding", "gzip")
		req.Header.Set("Idempotency-Key", "popup-1:1-3")
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var r ingest.Response
		json.NewDecoder(resp.Body).Decode(&r)
		return resp.StatusCode, r
	}
	if code, _ := send("not-the-token"); code != 401 {
		t.Fatalf("wrong token: %d", code)
	}
	code, r := send(token)
	if code != 200 || r.AckedThrough != 3 {
		t.Fatalf("%d %+v", code, r)
	}
	cp, err := r.Checkpoint.Open(cloudPub)
	if err != nil || cp.AckedThrough != 3 || cp.Turnover != 2700 {
		t.Fatalf("%+v %v", cp, err)
	}
}
