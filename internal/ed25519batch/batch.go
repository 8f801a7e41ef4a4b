// Package ed25519batch checks many Ed25519 signatures made with one key in
// a single multi-scalar multiplication, several times faster per signature
// than crypto/ed25519.Verify, which the cloud side needs to keep up with a
// box draining a day of receipts.
//
// The check is the cofactored batch equation of RFC 8032 section 5.1.7
// with random 128-bit weights:
//
//	[8]( [Σ zᵢsᵢ]B − [Σ zᵢkᵢ]A − Σ [zᵢ]Rᵢ ) = O
//
// It accepts every signature crypto/ed25519 accepts. It rejects what
// crypto/ed25519 rejects for any signature an honest signer or a forger
// can make; the only difference is a signature the key's owner crafts on
// purpose with a small-order component, which the cofactored equation
// accepts and the single check does not. A false result says only that
// some signature is bad: callers check them one by one to name it.
package ed25519batch

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha512"

	"filippo.io/edwards25519"
)

// Verify reports whether sigs[i] is a valid signature by pub of msgs[i]
// for every i. An empty batch is valid.
func Verify(pub ed25519.PublicKey, msgs, sigs [][]byte) bool {
	n := len(sigs)
	if len(msgs) != n || len(pub) != ed25519.PublicKeySize {
		return false
	}
	if n == 0 {
		return true
	}
	A, err := new(edwards25519.Point).SetBytes(pub)
	if err != nil {
		return false
	}
	weights := make([]byte, 16*n)
	rand.Read(weights) // never fails since Go 1.24

	scalars := make([]*edwards25519.Scalar, n+2)
	points := make([]*edwards25519.Point, n+2)
	zs := make([]edwards25519.Scalar, n)
	rs := make([]edwards25519.Point, n)
	sumS := edwards25519.NewScalar() // Σ zᵢsᵢ
	sumK := edwards25519.NewScalar() // Σ zᵢkᵢ
	var s, k edwards25519.Scalar
	var zb [32]byte
	var digest [64]byte
	h := sha512.New()
	for i, sig := range sigs {
		if len(sig) != ed25519.SignatureSize || sig[63]&0xe0 != 0 || !canonicalPoint(sig[:32]) {
			return false
		}
		if _, err := s.SetCanonicalBytes(sig[32:]); err != nil {
			return false
		}
		if _, err := rs[i].SetBytes(sig[:32]); err != nil {
			return false
		}
		// The Rᵢ go in negated so that their weights stay 128 bits long,
		// which halves the additions the multiplication does for them.
		rs[i].Negate(&rs[i])

		h.Reset()
		h.Write(sig[:32])
		h.Write(pub)
		h.Write(msgs[i])
		if _, err := k.SetUniformBytes(h.Sum(digest[:0])); err != nil {
			return false
		}
		copy(zb[:16], weights[16*i:16*i+16])
		if _, err := zs[i].SetCanonicalBytes(zb[:]); err != nil {
			return false
		}
		sumS.MultiplyAdd(&zs[i], &s, sumS)
		sumK.MultiplyAdd(&zs[i], &k, sumK)
		scalars[i+2], points[i+2] = &zs[i], &rs[i]
	}
	scalars[0], points[0] = sumS, edwards25519.NewGeneratorPoint()
	scalars[1], points[1] = sumK.Negate(sumK), A
	sum := new(edwards25519.Point).VarTimeMultiScalarMult(scalars, points)
	return sum.MultByCofactor(sum).Equal(edwards25519.NewIdentityPoint()) == 1
}

// canonicalPoint reports whether enc is the one canonical encoding of its
// y coordinate and sign, as crypto/ed25519 requires of R (it compares
// encodings, so it never accepts another): y below 2²⁵⁵−19, and no sign
// bit on the two points whose x is 0 (y = 1 and y = −1).
func canonicalPoint(enc []byte) bool {
	var y [32]byte
	copy(y[:], enc)
	sign := y[31] >> 7
	y[31] &= 0x7f
	// p = 2²⁵⁵−19 is ed ff … ff 7f little-endian; y ≥ p only when bytes 1..31
	// are all high and byte 0 is at least 0xed.
	high := y[31] == 0x7f
	for _, b := range y[1:31] {
		high = high && b == 0xff
	}
	if high && y[0] >= 0xed {
		return false
	}
	if sign == 1 {
		one := y[0] == 1
		minusOne := high && y[0] == 0xec
		for _, b := range y[1:] {
			one = one && b == 0
		}
		if one || minusOne {
			return false
		}
	}
	return true
}
