package ingest

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"fieldkit/sync/receipts"
)

func ledgerRecords(t *testing.T, n int) ([]receipts.Signed, ed25519.PublicKey) {
	dir := t.TempDir()
	l, err := receipts.Open(receipts.Options{Path: filepath.Join(dir, "r.db"), KeyFile: filepath.Join(dir, "k"), Box: "box1", BootID: "b",
		Sync: receipts.SyncFunc(func() bool { return true })})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var out []receipts.Signed
	for i := 1; i <= n; i++ {
		s, _, err := l.Append(context.Background(), receipts.Order{ClientID: fmt.Sprint("c", i), Order: "o", Items: []receipts.Item{{SKU: "A", Qty: 1, Price: 5}}, Total: 5, Currency: "EUR", Pay: "cash"})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out, l.PublicKey().Pub
}

func postBatch(t *testing.T, h http.Handler, ss []receipts.Signed, first ed25519.PublicKey, key string) (int, Response) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	for _, s := range ss {
		receipts.WriteLine(zw, s)
	}
	zw.Close()
	req := httptest.NewRequest("POST", "/v1/receipts", &buf)
	req.Header.Set("Content-Encoding", "gzip")
	if key == "" {
		r0, _ := ss[0].Decode()
		r1, _ := ss[len(ss)-1].Decode()
		key = fmt.Sprintf("box1:%d-%d", r0.Seq, r1.Seq)
	}
	req.Header.Set("Idempotency-Key", key)
	if first != nil {
		req.Header.Set(HeaderBoxKey, base64.StdEncoding.EncodeToString(first))
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	var r Response
	json.Unmarshal(w.Body.Bytes(), &r)
	return w.Code, r
}

func newServer(t *testing.T, trust map[string]ed25519.PublicKey) (*Server, *[]string) {
	_, key, _ := ed25519.GenerateKey(nil)
	var alarms []string
	s, err := Open(Options{DB: filepath.Join(t.TempDir(), "c.db"), Key: key, Trust: trust, TrustOnFirstUse: trust == nil,
		OnAlarm: func(box, kind, msg string) { alarms = append(alarms, kind) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, &alarms
}

func TestIngest(t *testing.T) {
	ss, pub := ledgerRecords(t, 10)
	s, alarms := newServer(t, map[string]ed25519.PublicKey{"box1": pub})

	code, r := postBatch(t, s, ss[:4], nil, "")
	if code != 200 || r.AckedThrough != 4 || r.Accepted != 4 {
		t.Fatalf("%d %+v", code, r)
	}
	cp, err := r.Checkpoint.Open(s.PublicKey())
	if err != nil || cp.AckedThrough != 4 || cp.Head != ss[3].Hash || cp.Turnover != 20 {
		t.Fatalf("checkpoint %+v %v", cp, err)
	}
	// A resent batch overlapping the stored records is deduped.
	code, r = postBatch(t, s, ss[2:7], nil, "")
	if code != 200 || r.AckedThrough != 7 || r.Accepted != 3 || r.Duplicates != 2 {
		t.Fatalf("overlap: %d %+v", code, r)
	}
	// A skip ahead is a 409 naming the seq the cloud needs.
	code, r = postBatch(t, s, ss[8:], nil, "")
	if code != 409 || r.ExpectedSeq != 8 || r.Fork {
		t.Fatalf("skip: %d %+v", code, r)
	}
	// Same seq, other bytes: a fork, alarmed.
	forged := ss[5]
	forged.Record = strings.Replace(forged.Record, `"pay":"cash"`, `"pay":"card"`, 1)
	code, r = postBatch(t, s, []receipts.Signed{forged}, nil, "")
	if code != 409 || !r.Fork || len(*alarms) != 1 || (*alarms)[0] != "fork" {
		t.Fatalf("fork: %d %+v %v", code, r, *alarms)
	}
	// A bad signature on the next record is refused and alarmed.
	bad := ss[7]
	bad.Record = strings.Replace(bad.Record, `"pay":"cash"`, `"pay":"card"`, 1)
	code, r = postBatch(t, s, []receipts.Signed{bad}, nil, "")
	if code != 422 || !strings.Contains(r.Error, "record 8: bad signature") {
		t.Fatalf("bad sig: %d %+v", code, r)
	}
	code, r = postBatch(t, s, ss[7:], nil, "")
	if code != 200 || r.AckedThrough != 10 {
		t.Fatalf("%d %+v", code, r)
	}
	st, _ := s.Box(context.Background(), "box1")
	if st.Seq != 10 || st.Count != 10 || st.Turnover != 50 {
		t.Fatalf("%+v", st)
	}
}

func TestIngestRefusals(t *testing.T) {
	ss, pub := ledgerRecords(t, 3)
	other, _, _ := ed25519.GenerateKey(nil)
	s, _ := newServer(t, nil)
	if code, r := postBatch(t, s, ss, nil, "box1:1-2"); code != 400 || !strings.Contains(r.Error, "Idempotency-Key") {
		t.Fatalf("%d %+v", code, r)
	}
	if code, r := postBatch(t, s, ss, nil, ""); code != 400 || !strings.Contains(r.Error, HeaderBoxKey) {
		t.Fatalf("no key: %d %+v", code, r)
	}
	if code, r := postBatch(t, s, ss, other, ""); code != 422 || !strings.Contains(r.Error, "unknown key") {
		t.Fatalf("wrong key: %d %+v", code, r)
	}
	if code, r := postBatch(t, s, ss[1:], pub, ""); code != 409 || r.ExpectedSeq != 1 {
		t.Fatalf("new box from seq 2: %d %+v", code, r)
	}
	if code, r := postBatch(t, s, ss, pub, ""); code != 200 || r.AckedThrough != 3 {
		t.Fatalf("%d %+v", code, r)
	}
	s2, _ := newServer(t, map[string]ed25519.PublicKey{})
	if code, _ := postBatch(t, s2, ss, pub, ""); code != 403 {
		t.Fatalf("unregistered box: %d", code)
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, httptest.NewRequest("POST", "/", strings.NewReader("not gzip")))
	if w.Code != 400 {
		t.Fatal(w.Code)
	}
}
