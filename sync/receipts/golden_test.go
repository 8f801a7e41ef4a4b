package receipts

import (
	"bytes"
	"os"
	"testing"
)

// testdata/golden-v1.ndjson was written by the ledger before its encoder
// was unified (a hand-built sale encoder beside json.Marshal of Record):
// escapes in box, boot, order, SKU and buyer, a discreet buyer, an
// unsynced clock, a key rotation and a sale after it. The verifier
// re-encodes every record with the one encoder and compares bytes, so
// this passing means the encoder writes exactly what was signed then.
func TestGoldenLedgerStillVerifies(t *testing.T) {
	pem, err := os.ReadFile("testdata/golden-v1.pem")
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ParsePublicPEM(pem)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.ReadFile("testdata/golden-v1.ndjson")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := VerifyExport(bytes.NewReader(f), pub, nil)
	if err != nil || !rep.OK() || rep.Count != 6 {
		t.Fatalf("golden ledger: %v %+v %v", err, rep, rep.Problem)
	}
	lr := NewLineReader(bytes.NewReader(f))
	for {
		s, ok, err := lr.Next()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		r, err := s.Decode()
		if err != nil {
			t.Fatal(err)
		}
		b, err := encodeRecord(r)
		if err != nil || !bytes.Equal(b, []byte(s.Record)) {
			t.Fatalf("record %d re-encodes differently:\n got %s\nwant %s", s.Seq, b, s.Record)
		}
	}
}
