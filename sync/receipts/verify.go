package receipts

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"fieldkit/internal/ed25519batch"
)

// Reason says why a record failed verification.
type Reason string

const (
	BadSignature     Reason = "bad signature"
	BrokenLink       Reason = "broken link"
	Gap              Reason = "gap"
	Duplicate        Reason = "duplicate"
	OutOfOrder       Reason = "out of order"
	TurnoverMismatch Reason = "turnover mismatch"
	UnknownKey       Reason = "unknown key"
	Malformed        Reason = "malformed record"
	WrongBox         Reason = "wrong box"
	Truncated        Reason = "tail truncated"
	Forked           Reason = "fork"
)

// Problem is the first bad record found and why.
type Problem struct {
	// Seq is the record's position: the seq the chain expected there.
	Seq    uint64
	Reason Reason
	Detail string
}

func (p *Problem) Error() string {
	return fmt.Sprintf("record %d: %s: %s", p.Seq, p.Reason, p.Detail)
}

// IsProblem returns the *Problem in err's chain.
func IsProblem(err error) (*Problem, bool) {
	var p *Problem
	ok := errors.As(err, &p)
	return p, ok
}

// Chain is the state of a verification: which keys may sign, which seq
// comes next, the head hash and the running turnover. The ledger, the
// verify command and the cloud ingest all check records with it.
type Chain struct {
	Box      string
	Seq      uint64 // last accepted record
	Head     string // its hash (genesis before record 1)
	Turnover int64
	// SignKid is the key that must sign the next record.
	SignKid string
	Keys    map[string]ed25519.PublicKey
	// LastTS is the previous record's time, for the backwards warning.
	LastTS time.Time

	anchor ed25519.PublicKey
	rotSeq uint64 // the last kept rotation taken by checkRotation
	dom    Domain
}

// NewChain starts verification at record 1 with the box's first key.
// box may be empty: it is then taken from record 1.
// It verifies real receipts: a record signed in another domain (a
// rehearsal) fails as a bad signature.
func NewChain(box string, first ed25519.PublicKey) *Chain {
	return NewChainIn(Real, box, first)
}

// NewChainIn is NewChain for records signed in domain d.
func NewChainIn(d Domain, box string, first ed25519.PublicKey) *Chain {
	kid := KeyID(first)
	c := &Chain{Box: box, SignKid: kid, Keys: map[string]ed25519.PublicKey{kid: first}, anchor: first, dom: d.orReal()}
	if box != "" {
		c.Head = c.dom.GenesisHash(box, kid)
	}
	return c
}

// Domain is the signing domain the chain verifies.
func (c *Chain) Domain() Domain { return c.dom.orReal() }

// Check verifies that s is the next record of the chain and, if so,
// advances the chain. It returns the decoded record and any warning.
func (c *Chain) Check(s Signed) (*Record, string, error) {
	r, err := s.Decode()
	if err != nil {
		return nil, "", &Problem{Seq: c.Seq + 1, Reason: Malformed, Detail: err.Error()}
	}
	return c.check(s, r, nil)
}

// CheckVerified is Check for a record already decoded as r whose
// signature was checked (sigOK) against the key named by its kid, e.g. by
// a pool of workers (see VerifySignatures); the chain still checks that
// the kid is the one allowed to sign here.
func (c *Chain) CheckVerified(s Signed, r *Record, sigOK bool) (*Record, string, error) {
	return c.check(s, r, &sigOK)
}

func (c *Chain) check(s Signed, r *Record, sigOK *bool) (*Record, string, error) {
	want := c.Seq + 1
	fail := func(r Reason, format string, args ...any) (*Record, string, error) {
		return nil, "", &Problem{Seq: want, Reason: r, Detail: fmt.Sprintf(format, args...)}
	}
	if r.V != Version {
		return fail(Malformed, "format version %d; this verifier knows %d", r.V, Version)
	}
	switch {
	case r.Seq == want:
	case r.Seq == c.Seq && c.Seq > 0:
		return fail(Duplicate, "seq %d appears twice", r.Seq)
	case r.Seq < want:
		return fail(OutOfOrder, "seq %d found after seq %d", r.Seq, c.Seq)
	default:
		return fail(Gap, "seq %d found where seq %d was expected: %d record(s) missing", r.Seq, want, r.Seq-want)
	}
	if s.Seq != 0 && s.Seq != r.Seq {
		return fail(Malformed, "stored as seq %d but the signed bytes say seq %d", s.Seq, r.Seq)
	}
	if c.Box == "" && want == 1 {
		c.Box = r.Box
		c.Head = c.dom.GenesisHash(r.Box, c.SignKid)
	}
	if r.Box != c.Box {
		return fail(WrongBox, "record is from box %q, the chain is box %q", r.Box, c.Box)
	}
	pub, ok := c.Keys[r.Kid]
	if !ok {
		return fail(UnknownKey, "signed with key %s, which this chain never announced", r.Kid)
	}
	if r.Kid != c.SignKid {
		return fail(UnknownKey, "signed with retired key %s; key %s signs from here on", r.Kid, c.SignKid)
	}
	sig, err := s.RawSig()
	if err != nil {
		return fail(BadSignature, "%v", err)
	}
	body := []byte(s.Record)
	if sigOK != nil && !*sigOK || sigOK == nil && !ed25519.Verify(pub, c.dom.Message(body), sig) {
		return fail(BadSignature, "the signature does not match the record bytes for key %s", r.Kid)
	}
	// One encoder: bytes that are not what encodeRecord makes of the
	// decoded record (a field missing, added, repeated, out of order or
	// written differently) are not a receipt, signed or not.
	if canon, err := encodeRecord(r); err != nil || !bytes.Equal(canon, body) {
		return fail(Malformed, "the record bytes are not in the canonical form of a %q record (see the README: every field present, in order, once)", r.Type)
	}
	if r.Prev != c.Head {
		return fail(BrokenLink, "prev %.16s… does not match the hash of record %d (%.16s…)", r.Prev, c.Seq, c.Head)
	}
	hash := ChainHash(body, sig)
	if s.Hash != "" && s.Hash != hash {
		return fail(Malformed, "stated hash %.16s… is not the hash of the record (%.16s…)", s.Hash, hash)
	}
	turnover := c.Turnover
	var newKey ed25519.PublicKey
	switch r.Type {
	case TypeSale:
		var sum int64
		for _, it := range r.Items {
			line, ok := mulAmount(it.Qty, it.Price)
			if ok {
				sum, ok = addTotal(sum, line)
			}
			if !ok || it.Qty <= 0 || it.Price < 0 {
				return fail(Malformed, "item %s: qty %d × price %d is not an amount", it.SKU, it.Qty, it.Price)
			}
		}
		if len(r.Items) == 0 || sum != r.Total {
			return fail(Malformed, "total %d is not the sum of qty × price over the items (%d)", r.Total, sum)
		}
		t, ok := addTotal(turnover, r.Total)
		if !ok {
			return fail(TurnoverMismatch, "previous turnover %d plus total %d overflows a signed 64-bit integer", c.Turnover, r.Total)
		}
		turnover = t
	case TypeRotation:
		kb, err := base64.StdEncoding.DecodeString(r.NewKey)
		if err != nil || len(kb) != ed25519.PublicKeySize {
			return fail(Malformed, "rotation record without a valid new_key")
		}
		newKey = ed25519.PublicKey(kb)
		if KeyID(newKey) != r.NewKid {
			return fail(Malformed, "rotation new_kid %s is not the id of new_key (%s)", r.NewKid, KeyID(newKey))
		}
	case TypeHandover:
		if r.Sale == 0 || r.Sale >= r.Seq {
			return fail(Malformed, "hand-over of sale %d: a hand-over names an earlier record", r.Sale)
		}
		if r.Order == "" || r.By == "" {
			return fail(Malformed, "hand-over of sale %d without its order or who handed it over", r.Sale)
		}
	default:
		return fail(Malformed, "unknown record type %q", r.Type)
	}
	if r.Turnover != turnover {
		return fail(TurnoverMismatch, "turnover %d; previous turnover %d plus this total makes %d", r.Turnover, c.Turnover, turnover)
	}
	var warn string
	if ts, err := time.Parse(time.RFC3339Nano, r.TS); err != nil {
		return fail(Malformed, "ts %q is not RFC 3339", r.TS)
	} else {
		if !c.LastTS.IsZero() && ts.Before(c.LastTS) {
			warn = fmt.Sprintf("record %d: time went backwards by %s (clock_synced=%v)", r.Seq, c.LastTS.Sub(ts), r.ClockSynced)
		}
		c.LastTS = ts
	}
	c.Seq, c.Head, c.Turnover = r.Seq, hash, turnover
	if newKey != nil {
		c.Keys[r.NewKid] = newKey
		c.SignKid = r.NewKid
	}
	return r, warn, nil
}

// checkRotation takes a key rotation record kept after its neighbours
// were pruned (key_history): it must be signed by the key that signs at
// this point of the chain, and then its new key signs from there on. The
// links around it are gone; the records after the anchor prove those.
func (c *Chain) checkRotation(s Signed) *Problem {
	fail := func(reason Reason, format string, args ...any) *Problem {
		return &Problem{Seq: s.Seq, Reason: reason, Detail: "kept key rotation: " + fmt.Sprintf(format, args...)}
	}
	r, err := s.Decode()
	if err != nil {
		return fail(Malformed, "%v", err)
	}
	if r.Type != TypeRotation || r.Seq != s.Seq || r.Seq <= c.rotSeq {
		return fail(Malformed, "not a key rotation in order (type %q, seq %d)", r.Type, r.Seq)
	}
	if c.Box != "" && r.Box != c.Box {
		return fail(WrongBox, "record is from box %q, the chain is box %q", r.Box, c.Box)
	}
	if r.Kid != c.SignKid {
		return fail(UnknownKey, "signed with key %s; key %s signs at this point", r.Kid, c.SignKid)
	}
	sig, err := s.RawSig()
	if err != nil {
		return fail(BadSignature, "%v", err)
	}
	if !ed25519.Verify(c.Keys[r.Kid], c.dom.Message([]byte(s.Record)), sig) {
		return fail(BadSignature, "the signature does not match the record bytes for key %s", r.Kid)
	}
	kb, err := base64.StdEncoding.DecodeString(r.NewKey)
	if err != nil || len(kb) != ed25519.PublicKeySize || KeyID(kb) != r.NewKid {
		return fail(Malformed, "new_key is not a valid key with id new_kid")
	}
	c.Keys[r.NewKid] = ed25519.PublicKey(kb)
	c.SignKid, c.rotSeq = r.NewKid, r.Seq
	return nil
}

// mulAmount multiplies a quantity by a unit price, reporting overflow.
func mulAmount(qty, price int64) (int64, bool) {
	if qty < 0 || price < 0 {
		return 0, false
	}
	if qty != 0 && price > math.MaxInt64/qty {
		return 0, false
	}
	return qty * price, true
}

// Report is the outcome of verifying a whole ledger or export.
type Report struct {
	Box      string   `json:"box"`
	First    uint64   `json:"first"`
	Last     uint64   `json:"last"`
	Count    int      `json:"count"`
	Head     string   `json:"head"`
	Turnover int64    `json:"turnover"`
	Warnings []string `json:"warnings,omitempty"`
	Problem  *Problem `json:"problem,omitempty"`
}

// OK reports whether the ledger verified.
func (r *Report) OK() bool { return r.Problem == nil }

// Source yields records in stored order; ok false means the end.
type Source func() (s Signed, ok bool, err error)

// VerifyAll checks every record from src on chain c, then each
// checkpoint in turn: a ledger that ends before a checkpoint's
// acked_through, or whose record there has another hash, was truncated or
// forked. Reading errors are returned as errors; a bad ledger is a Report
// with Problem.
func VerifyAll(c *Chain, src Source, cps ...*Checkpoint) (*Report, error) {
	rep := &Report{Box: c.Box}
	var pending *Signed
	next := func() (Signed, bool, error) {
		if pending != nil {
			s := *pending
			pending = nil
			return s, true, nil
		}
		return src()
	}
	cpHash := make([]string, len(cps))
	for {
		s, ok, err := next()
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		r, warn, err := c.Check(s)
		if err != nil {
			p, _ := IsProblem(err)
			if p.Reason == Gap {
				// A record from further on may be followed by the one that
				// belongs here: then two were swapped, not lost.
				n, ok2, err2 := src()
				if err2 == nil && ok2 {
					if nr, e := n.Decode(); e == nil && nr.Seq == c.Seq+1 {
						p.Reason, p.Detail = OutOfOrder, fmt.Sprintf("seq %d is stored before seq %d", firstSeq(s), nr.Seq)
					}
				}
			}
			rep.Problem = p
			break
		}
		if rep.Count == 0 {
			rep.First = r.Seq
		}
		rep.Count++
		if warn != "" {
			rep.Warnings = append(rep.Warnings, warn)
		}
		for i, cp := range cps {
			if cp != nil && r.Seq == cp.AckedThrough {
				cpHash[i] = c.Head
			}
		}
	}
	rep.Box, rep.Last, rep.Head, rep.Turnover = c.Box, c.Seq, c.Head, c.Turnover
	for i, cp := range cps {
		if rep.Problem != nil {
			break
		}
		if cp == nil {
			continue
		}
		switch {
		case cp.Box != "" && c.Box != "" && cp.Box != c.Box:
			rep.Problem = &Problem{Seq: cp.AckedThrough, Reason: WrongBox, Detail: fmt.Sprintf("the checkpoint is for box %q, the ledger is box %q", cp.Box, c.Box)}
		case c.Seq < cp.AckedThrough:
			rep.Problem = &Problem{Seq: c.Seq + 1, Reason: Truncated, Detail: fmt.Sprintf("the checkpoint acknowledges records through seq %d, but the ledger ends at seq %d", cp.AckedThrough, c.Seq)}
		case cpHash[i] != "" && cpHash[i] != cp.Head:
			rep.Problem = &Problem{Seq: cp.AckedThrough, Reason: Forked, Detail: fmt.Sprintf("the checkpoint has hash %.16s… for this record, the ledger has %.16s…", cp.Head, cpHash[i])}
		}
	}
	return rep, nil
}

func firstSeq(s Signed) uint64 {
	if r, err := s.Decode(); err == nil {
		return r.Seq
	}
	return s.Seq
}

// VerifySignatures checks the signatures of a run of records in parallel,
// with the chain's keys and any announced by rotation records in the run.
// ok[i] says whether recs[i] carries a valid signature by the key its kid
// names; the order and the links are left to CheckVerified.
func (c *Chain) VerifySignatures(ss []Signed, recs []*Record, workers int) []bool {
	keys := make(map[string]ed25519.PublicKey, len(c.Keys)+1)
	for k, v := range c.Keys {
		keys[k] = v
	}
	for _, r := range recs {
		if r != nil && r.Type == TypeRotation {
			if kb, err := base64.StdEncoding.DecodeString(r.NewKey); err == nil && len(kb) == ed25519.PublicKeySize && KeyID(kb) == r.NewKid {
				keys[r.NewKid] = kb
			}
		}
	}
	ok := make([]bool, len(ss))
	if workers < 1 {
		workers = 1
	}
	var wg sync.WaitGroup
	per := (len(ss) + workers - 1) / workers
	for w := 0; w < workers; w++ {
		lo, hi := w*per, min((w+1)*per, len(ss))
		if lo >= hi {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			verifyRange(c.dom, keys, ss[lo:hi], recs[lo:hi], ok[lo:hi])
		}()
	}
	wg.Wait()
	return ok
}

// batchMax bounds one batch check: past ~64 signatures the per-signature
// cost hardly falls, and a bad signature sends the whole batch to the
// one-by-one check.
const batchMax = 64

// verifyRange checks runs of records signed by one key with one batch
// check each; a run that fails is checked record by record, so ok names
// exactly the bad ones.
func verifyRange(d Domain, keys map[string]ed25519.PublicKey, ss []Signed, recs []*Record, ok []bool) {
	msgs := make([][]byte, 0, batchMax)
	sigs := make([][]byte, 0, batchMax)
	idx := make([]int, 0, batchMax)
	var runKey ed25519.PublicKey
	flush := func() {
		if len(idx) == 0 {
			return
		}
		all := ed25519batch.Verify(runKey, msgs, sigs)
		for j, i := range idx {
			ok[i] = all || ed25519.Verify(runKey, msgs[j], sigs[j])
		}
		msgs, sigs, idx = msgs[:0], sigs[:0], idx[:0]
	}
	for i := range ss {
		if recs[i] == nil {
			continue
		}
		pub, found := keys[recs[i].Kid]
		sig, err := ss[i].RawSig()
		if !found || err != nil {
			continue
		}
		if len(idx) == batchMax || (len(idx) > 0 && !bytes.Equal(pub, runKey)) {
			flush()
		}
		runKey = pub
		msgs = append(msgs, d.Message([]byte(ss[i].Record)))
		sigs = append(sigs, sig)
		idx = append(idx, i)
	}
	flush()
}
