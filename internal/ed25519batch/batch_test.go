package ed25519batch

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"math/big"
	"testing"
)

// fixture is n messages signed by one deterministic key.
func fixture(t testing.TB, n int) (ed25519.PublicKey, [][]byte, [][]byte) {
	t.Helper()
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	msgs := make([][]byte, n)
	sigs := make([][]byte, n)
	for i := range msgs {
		msgs[i] = fmt.Appendf(nil, `{"seq":%d,"total":%d,"items":"%s"}`, i+1, i*250, bytes.Repeat([]byte{'x'}, i%300))
		sigs[i] = ed25519.Sign(priv, msgs[i])
	}
	return priv.Public().(ed25519.PublicKey), msgs, sigs
}

func clone(in [][]byte) [][]byte {
	out := make([][]byte, len(in))
	for i, b := range in {
		out[i] = bytes.Clone(b)
	}
	return out
}

func TestValidBatches(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 64, 257} {
		pub, msgs, sigs := fixture(t, n)
		if !Verify(pub, msgs, sigs) {
			t.Errorf("n=%d: a batch of good signatures was refused", n)
		}
	}
}

// scalarBytes encodes v mod 2²⁵⁶ little-endian.
func scalarBytes(v *big.Int) []byte {
	be := v.FillBytes(make([]byte, 32))
	for i, j := 0, 31; i < j; i, j = i+1, j-1 {
		be[i], be[j] = be[j], be[i]
	}
	return be
}

func TestOneBadSignatureSpoilsTheBatch(t *testing.T) {
	order, _ := new(big.Int).SetString("7237005577332262213973186563042994240857116359379907606001950938285454250989", 10)
	otherPub, _, _ := ed25519.GenerateKey(nil)
	cases := map[string]func(pub *ed25519.PublicKey, msgs, sigs [][]byte, i int){
		"message byte flipped": func(_ *ed25519.PublicKey, msgs, _ [][]byte, i int) { msgs[i][3] ^= 1 },
		"message truncated":    func(_ *ed25519.PublicKey, msgs, _ [][]byte, i int) { msgs[i] = msgs[i][:len(msgs[i])-1] },
		"R bit flipped":        func(_ *ed25519.PublicKey, _, sigs [][]byte, i int) { sigs[i][5] ^= 0x10 },
		"S bit flipped":        func(_ *ed25519.PublicKey, _, sigs [][]byte, i int) { sigs[i][40] ^= 0x01 },
		"S + L (not reduced)": func(_ *ed25519.PublicKey, _, sigs [][]byte, i int) {
			le := sigs[i][32:]
			be := make([]byte, 32)
			for j := range le {
				be[31-j] = le[j]
			}
			s := new(big.Int).SetBytes(be)
			copy(sigs[i][32:], scalarBytes(s.Add(s, order)))
		},
		"short signature":  func(_ *ed25519.PublicKey, _, sigs [][]byte, i int) { sigs[i] = sigs[i][:63] },
		"swapped messages": func(_ *ed25519.PublicKey, msgs, _ [][]byte, i int) { msgs[i], msgs[0] = msgs[0], msgs[i] },
		"another key":      func(pub *ed25519.PublicKey, _, _ [][]byte, _ int) { *pub = otherPub },
	}
	for name, spoil := range cases {
		for _, i := range []int{1, 17, 63} {
			pub, msgs, sigs := fixture(t, 64)
			msgs, sigs = clone(msgs), clone(sigs)
			spoil(&pub, msgs, sigs, i)
			single := true
			for j := range sigs {
				single = single && ed25519.Verify(pub, msgs[j], sigs[j])
			}
			if single {
				t.Fatalf("%s at %d: the fixture is still valid for crypto/ed25519", name, i)
			}
			if Verify(pub, msgs, sigs) {
				t.Errorf("%s at %d: the batch passed", name, i)
			}
		}
	}
}

func TestNonCanonicalR(t *testing.T) {
	p := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))
	enc := func(y *big.Int, sign byte) []byte {
		b := scalarBytes(y)
		b[31] |= sign << 7
		return b
	}
	for name, c := range map[string]struct {
		enc  []byte
		want bool
	}{
		"y = 1, +":     {enc(big.NewInt(1), 0), true},
		"y = 1, -":     {enc(big.NewInt(1), 1), false},
		"y = p-1, +":   {enc(new(big.Int).Sub(p, big.NewInt(1)), 0), true},
		"y = p-1, -":   {enc(new(big.Int).Sub(p, big.NewInt(1)), 1), false},
		"y = p":        {enc(p, 0), false},
		"y = p+1":      {enc(new(big.Int).Add(p, big.NewInt(1)), 0), false},
		"y = 2^255-1":  {enc(new(big.Int).Add(p, big.NewInt(18)), 1), false},
		"y = p-2, -":   {enc(new(big.Int).Sub(p, big.NewInt(2)), 1), true},
		"y = 2^248, -": {enc(new(big.Int).Lsh(big.NewInt(1), 248), 1), true},
	} {
		if got := canonicalPoint(c.enc); got != c.want {
			t.Errorf("%s: canonical = %v, want %v", name, got, c.want)
		}
	}
	// A signature whose R is y = 1 with the sign bit set (the identity,
	// written non-canonically) must fail like crypto/ed25519 fails it.
	pub, msgs, sigs := fixture(t, 4)
	sigs = clone(sigs)
	copy(sigs[2][:32], enc(big.NewInt(1), 1))
	if ed25519.Verify(pub, msgs[2], sigs[2]) || Verify(pub, msgs, sigs) {
		t.Error("a non-canonical R passed")
	}
}

func TestWeightsAreFresh(t *testing.T) {
	// Two calls must not reuse weights: if they did, a forger could pick
	// a pair of bad signatures whose errors cancel. Indirect check: two
	// signatures with S swapped between them fail every time.
	pub, msgs, sigs := fixture(t, 2)
	sigs = clone(sigs)
	var s0 [32]byte
	copy(s0[:], sigs[0][32:])
	copy(sigs[0][32:], sigs[1][32:])
	copy(sigs[1][32:], s0[:])
	for range 20 {
		if Verify(pub, msgs, sigs) {
			t.Fatal("swapped S values passed")
		}
	}
}

// FuzzVerifyAgreesWithSingle mutates one signature or message of a batch
// and checks that the batch says what crypto/ed25519 says of the batch.
func FuzzVerifyAgreesWithSingle(f *testing.F) {
	f.Add(uint16(0), uint16(0), byte(0))
	f.Add(uint16(3), uint16(31), byte(0x80))
	f.Add(uint16(5), uint16(63), byte(0x10))
	f.Add(uint16(7), uint16(1000), byte(1))
	f.Add(uint16(2), uint16(32), byte(0xff))
	pub, msgs0, sigs0 := fixture(f, 8)
	f.Fuzz(func(t *testing.T, which, pos uint16, mask byte) {
		msgs, sigs := clone(msgs0), clone(sigs0)
		i := int(which) % len(sigs)
		if p := int(pos); p < 64 {
			sigs[i][p] ^= mask
		} else {
			m := msgs[i]
			m[p%len(m)] ^= mask
		}
		want := true
		for j := range sigs {
			want = want && ed25519.Verify(pub, msgs[j], sigs[j])
		}
		if got := Verify(pub, msgs, sigs); got != want {
			t.Fatalf("batch %v, one by one %v (sig %d, pos %d, mask %#x)", got, want, i, pos, mask)
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	pub, msgs, sigs := fixture(b, 256)
	b.Run("single", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			j := i % len(sigs)
			if !ed25519.Verify(pub, msgs[j], sigs[j]) {
				b.Fatal("bad")
			}
		}
	})
	for _, n := range []int{16, 64, 256} {
		b.Run(fmt.Sprintf("batch-%d", n), func(b *testing.B) {
			for b.Loop() {
				if !Verify(pub, msgs[:n], sigs[:n]) {
					b.Fatal("bad")
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n)/1000, "µs/sig")
		})
	}
}
