package receipts

import (
	"context"
	"testing"
)

// TestVerifySignaturesNamesTheBadOnes: the batch check over a run with a
// key rotation in the middle accepts every good record and names exactly
// the ones whose signature is bad, wherever they sit in a batch.
func TestVerifySignaturesNamesTheBadOnes(t *testing.T) {
	l := openTest(t, nil)
	first := l.PublicKey()
	ss := appendN(t, l, 150)
	rot, err := l.Rotate(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ss = append(ss, rot)
	ss = append(ss, appendN(t, l, 100)...)
	thief, _ := GenerateKey()
	bad := map[int]bool{0: true, 37: true, 150: true, 200: true, 250: true}
	recs := make([]*Record, len(ss))
	for i := range ss {
		r, err := ss[i].Decode()
		if err != nil {
			t.Fatal(err)
		}
		if bad[i] {
			// Signed by another key under this key's id.
			if ss[i], err = signRecord(r, thief.Priv); err != nil {
				t.Fatal(err)
			}
		}
		recs[i] = r
	}
	for _, workers := range []int{1, 3} {
		ok := NewChain(l.Box(), first.Pub).VerifySignatures(ss, recs, workers)
		for i := range ok {
			if ok[i] == bad[i] {
				t.Errorf("workers %d: record %d (seq %d) ok=%v, want %v", workers, i, recs[i].Seq, ok[i], !bad[i])
			}
		}
	}
}
