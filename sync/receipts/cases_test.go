package receipts

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"math"
	"os"
	"strings"
	"testing"
	"time"
)

// exportCase is one ledger export for the verifiers: valid (reason "")
// or tampered, with the first bad record and the reason expected.
type exportCase struct {
	name        string
	first       ed25519.PublicKey
	export      string
	checkpoints []SignedCheckpoint
	cloud       ed25519.PublicKey // the checkpoints' key, if any
	count       int               // records in a valid export
	seq         uint64
	reason      Reason
}

func (c exportCase) openCheckpoints(t *testing.T) []*Checkpoint {
	var out []*Checkpoint
	for _, sc := range c.checkpoints {
		cp, err := sc.Open(nil)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, cp)
	}
	return out
}

// resignChain re-signs lines from index `from` on with k, re-linking each
// to the one before and recomputing the turnover, after edit (if any)
// changed a record: what someone holding the key can do.
func resignChain(t *testing.T, lines []string, from int, k ed25519.PrivateKey, edit func(i int, r *Record)) []string {
	t.Helper()
	out := append([]string(nil), lines...)
	var prev string
	var turnover int64
	if from > 0 {
		s := mustParse(t, out[from-1])
		r, _ := s.Decode()
		prev, turnover = s.Hash, r.Turnover
	}
	for i := from; i < len(out); i++ {
		r, _ := mustParse(t, out[i]).Decode()
		if i == 0 {
			prev = Genesis(r.Box, r.Kid)
		}
		r.Prev = prev
		if edit != nil {
			edit(i, r)
		}
		if r.Type == TypeSale {
			turnover += r.Total
		}
		r.Turnover = turnover
		ns, err := signRecord(r, k)
		if err != nil {
			t.Fatal(err)
		}
		prev = ns.Hash
		out[i] = lineOf(t, ns)
	}
	return out
}

// signRaw signs body as it is (any bytes) as record seq with k.
func signRaw(seq uint64, body string, k ed25519.PrivateKey) Signed {
	sig := ed25519.Sign(k, SignedMessage([]byte(body)))
	return makeSigned(seq, []byte(body), sig)
}

func exportCases(t *testing.T) []exportCase {
	t.Helper()
	l := openTest(t, nil)
	appendN(t, l, 6)
	first := l.PublicKey().Pub
	priv := l.key.Priv
	clean := exportLines(t, l)
	thief, _ := GenerateKey()
	cloud := testCloudKey(t)
	cloudPub := cloud.Public().(ed25519.PublicKey)
	sign := func(cp Checkpoint) SignedCheckpoint {
		sc, err := SignCheckpoint(cp, cloud)
		if err != nil {
			t.Fatal(err)
		}
		return sc
	}
	join := func(ls []string) string { return fixLast(ls) }
	tampered := func(name string, seq uint64, reason Reason, edit func([]string) []string) exportCase {
		return exportCase{name: name, first: first, export: join(edit(append([]string(nil), clean...))), seq: seq, reason: reason}
	}
	rawEdit := func(i int, edit func(body string) string) func([]string) []string {
		return func(ls []string) []string {
			s := mustParse(t, ls[i])
			ls[i] = lineOf(t, signRaw(s.Seq, edit(s.Record), priv))
			return ls
		}
	}
	cases := []exportCase{
		{name: "clean", first: first, export: join(clean), count: 6},
		{name: "clean, with its cloud checkpoint", first: first, export: join(clean), count: 6, cloud: cloudPub,
			checkpoints: []SignedCheckpoint{sign(Checkpoint{Box: "box1", AckedThrough: 6, Head: mustParse(t, clean[5]).Hash, Turnover: 6 * 4500})}},
		tampered("flip a byte in an order id", 3, BadSignature, func(ls []string) []string {
			ls[2] = strings.Replace(ls[2], "A-0003", "A-0008", 1)
			return ls
		}),
		tampered("flip a byte in a price", 4, BadSignature, func(ls []string) []string {
			ls[3] = strings.Replace(ls[3], `\"price\":2500`, `\"price\":2400`, 1)
			return ls
		}),
		tampered("flip a byte in the signature", 2, BadSignature, func(ls []string) []string {
			s := mustParse(t, ls[1])
			b := []byte(s.Sig)
			b[10] ^= 0x01
			if b[10] == '+' || b[10] == '/' || b[10] == '=' {
				b[10] = 'A'
			}
			s.Sig = string(b)
			ls[1] = lineOf(t, s)
			return ls
		}),
		tampered("delete a middle record", 3, Gap, func(ls []string) []string { return append(ls[:2:2], ls[3:]...) }),
		tampered("reorder two", 3, OutOfOrder, func(ls []string) []string {
			ls[2], ls[3] = ls[3], ls[2]
			return ls
		}),
		tampered("duplicate a record", 5, Duplicate, func(ls []string) []string {
			return append(ls[:4:4], append([]string{ls[3]}, ls[4:]...)...)
		}),
		{name: "truncate the tail, caught by the checkpoint", first: first, export: join(clean[:4]), seq: 5, reason: Truncated, cloud: cloudPub,
			checkpoints: []SignedCheckpoint{sign(Checkpoint{Box: "box1", AckedThrough: 6, Head: mustParse(t, clean[5]).Hash})}},
		{name: "a fork at the checkpoint", first: first, export: join(clean), seq: 5, reason: Forked, cloud: cloudPub,
			checkpoints: []SignedCheckpoint{sign(Checkpoint{Box: "box1", AckedThrough: 5, Head: mustParse(t, clean[5]).Hash})}},
		{name: "a checkpoint of another box", first: first, export: join(clean), seq: 6, reason: WrongBox, cloud: cloudPub,
			checkpoints: []SignedCheckpoint{sign(Checkpoint{Box: "box2", AckedThrough: 6, Head: mustParse(t, clean[5]).Hash})}},
		tampered("re-sign everything with a swapped key", 1, UnknownKey, func(ls []string) []string {
			return resignChain(t, ls, 0, thief.Priv, func(_ int, r *Record) { r.Kid = thief.ID; r.Prev = Genesis(r.Box, thief.ID) })
		}),
		tampered("turnover inflated by someone holding the key", 5, TurnoverMismatch, func(ls []string) []string {
			s := mustParse(t, ls[4])
			r, _ := s.Decode()
			r.Turnover += 100
			ns, _ := signRecord(r, priv)
			ls[4] = lineOf(t, ns)
			return ls
		}),
		tampered("a record rewritten with the key breaks the next link", 3, BrokenLink, func(ls []string) []string {
			s := mustParse(t, ls[1])
			r, _ := s.Decode()
			r.Pay = "cash"
			ns, _ := signRecord(r, priv)
			ls[1] = lineOf(t, ns)
			return ls
		}),
		tampered("not JSON", 3, Malformed, func(ls []string) []string {
			ls[2] = "{\"seq\":3,\n"
			return ls
		}),
		tampered("a key twice in an export line", 2, Malformed, func(ls []string) []string {
			ls[1] = strings.Replace(ls[1], `{"seq":2,`, `{"seq":2,"seq":2,`, 1)
			return ls
		}),
		tampered("a lone surrogate in the record string", 2, Malformed, func(ls []string) []string {
			ls[1] = strings.Replace(ls[1], `Sam R.`, `Sam \ud800`, 1)
			return ls
		}),
		tampered("total twice, signed", 2, Malformed, rawEdit(1, func(b string) string {
			return strings.Replace(b, `"total":4500`, `"total":4500,"total":4500`, 1)
		})),
		tampered("total left out, signed", 2, Malformed, rawEdit(1, func(b string) string {
			return strings.Replace(b, `"total":4500,`, ``, 1)
		})),
		tampered("fields reordered, signed", 2, Malformed, rawEdit(1, func(b string) string {
			return strings.Replace(b, `"currency":"EUR","pay":"card"`, `"pay":"card","currency":"EUR"`, 1)
		})),
		tampered("an extra field, signed", 2, Malformed, rawEdit(1, func(b string) string {
			return strings.Replace(b, `"pay":"card"`, `"pay":"card","note":"x"`, 1)
		})),
		tampered("spaces in the record, signed", 2, Malformed, rawEdit(1, func(b string) string {
			return strings.Replace(b, `"pay":"card"`, `"pay": "card"`, 1)
		})),
		tampered("an unknown record type, signed", 2, Malformed, rawEdit(1, func(b string) string {
			return strings.Replace(b, `"type":"sale"`, `"type":"refund"`, 1)
		})),
		tampered("a total that is not the items' sum, re-signed", 2, Malformed, func(ls []string) []string {
			return resignChain(t, ls, 1, priv, func(i int, r *Record) {
				if i == 1 {
					r.Total = 999
				}
			})
		}),
	}
	cases = append(cases, rotationCases(t, cloud)...)
	cases = append(cases, largeTurnoverCases(t)...)
	cases = append(cases, handoverCases(t)...)
	golden, err := os.ReadFile("testdata/golden-v1.ndjson")
	if err != nil {
		t.Fatal(err)
	}
	gpem, _ := os.ReadFile("testdata/golden-v1.pem")
	gpub, err := ParsePublicPEM(gpem)
	if err != nil {
		t.Fatal(err)
	}
	cases = append(cases, exportCase{name: "golden ledger of the previous encoder", first: gpub, export: string(golden), count: 6})
	return cases
}

// rotationCases: a ledger with two key rotations and sales of total 0,
// valid; and rotations not signed by the key before them.
func rotationCases(t *testing.T, cloud ed25519.PrivateKey) []exportCase {
	l := openTest(t, func(o *Options) { o.Currency = "JPY" })
	first := l.key
	ctx := context.Background()
	free := func(n int) {
		if _, _, err := l.Append(ctx, Order{ClientID: "free-" + string(rune('a'+n)), Order: "GIFT", Items: []Item{{SKU: "STICKER", Qty: 3, Price: 0}}, Total: 0, Currency: "JPY", Pay: "voucher"}); err != nil {
			t.Fatal(err)
		}
		l.clk.Advance(time.Second)
	}
	paid := func(n int) {
		if _, _, err := l.Append(ctx, Order{ClientID: "paid-" + string(rune('a'+n)), Order: "A", Items: []Item{{SKU: "TEE", Qty: 2, Price: 3000}}, Total: 6000, Currency: "JPY", Pay: "cash"}); err != nil {
			t.Fatal(err)
		}
		l.clk.Advance(time.Second)
	}
	free(0)
	paid(1)
	if _, err := l.Rotate(ctx); err != nil { // seq 3, signed by the first key
		t.Fatal(err)
	}
	second := l.key
	free(2)
	if _, err := l.Rotate(ctx); err != nil { // seq 5, signed by the second
		t.Fatal(err)
	}
	paid(3)
	free(4)
	lines := exportLines(t, l)
	thief, _ := GenerateKey()
	sc, err := SignCheckpoint(Checkpoint{Box: "box1", AckedThrough: 7, Head: mustParse(t, lines[6]).Hash, Turnover: 12000}, cloud)
	if err != nil {
		t.Fatal(err)
	}
	rotatedTo := func(i int, k *Key, signer *Key) []string {
		// Rotation record i announces k, signed by signer; the rest of
		// the chain re-signed by k so that only the rotation is wrong.
		out := append([]string(nil), lines[:i]...)
		s := mustParse(t, lines[i])
		r, _ := s.Decode()
		r.Kid, r.NewKid, r.NewKey = signer.ID, k.ID, base64.StdEncoding.EncodeToString(k.Pub)
		ns, _ := signRecord(r, signer.Priv)
		out = append(out, lineOf(t, ns))
		out = append(out, lines[i+1:]...)
		return resignChain(t, out, i+1, k.Priv, func(_ int, r *Record) { r.Kid = k.ID })
	}
	return []exportCase{
		{name: "two key rotations and zero totals", first: first.Pub, export: fixLast(lines), count: 7, cloud: cloud.Public().(ed25519.PublicKey), checkpoints: []SignedCheckpoint{sc}},
		{name: "a rotation to the thief's key signed by the thief", first: first.Pub, export: fixLast(rotatedTo(2, thief, thief)), seq: 3, reason: UnknownKey},
		{name: "a rotation to the thief's key signed by the new key under the old id", first: first.Pub, export: fixLast(rotatedTo(2, thief, &Key{Priv: thief.Priv, Pub: thief.Pub, ID: first.ID})), seq: 3, reason: BadSignature},
		{name: "a second rotation signed by the first key, retired", first: first.Pub, export: fixLast(rotatedTo(4, thief, first)), seq: 5, reason: UnknownKey},
		{name: "the second key's rotation verified from the second key alone", first: second.Pub, export: fixLast(lines), seq: 1, reason: UnknownKey},
	}
}

// largeTurnoverCases are signed directly (the box's input limits are not
// the verifier's rules): turnovers past 2^53, up to 2^63-1, and the
// wrapped turnover the box wrote before it refused overflowing sales.
func largeTurnoverCases(t *testing.T) []exportCase {
	k, _ := GenerateKey()
	mk := func(totals []int64) string {
		var lines []string
		prev := Genesis("box1", k.ID)
		var turnover int64
		for i, total := range totals {
			turnover += total // wraps, as the old writer did
			r := &Record{V: Version, Type: TypeSale, Box: "box1", Kid: k.ID, Seq: uint64(i + 1),
				TS: t0.Add(time.Duration(i) * time.Second).Format(tsLayout), ClockSynced: true, Boot: "b", Prev: prev, Turnover: turnover,
				Order: "BIG", ClientID: "big-" + string(rune('a'+i)), Items: []Item{{SKU: "LOT", Qty: 1, Price: total}}, Total: total, Currency: "EUR", Pay: "other"}
			s, err := signRecord(r, k.Priv)
			if err != nil {
				t.Fatal(err)
			}
			prev = s.Hash
			lines = append(lines, lineOf(t, s))
		}
		return fixLast(lines)
	}
	near := []int64{4_000_000_000_000_000_000, 4_000_000_000_000_000_000, 1_223_372_036_854_775_807}
	var big bytes.Buffer
	big.WriteString(mk(near))
	return []exportCase{
		{name: "turnover up to 2^63-1", first: k.Pub, export: big.String(), count: 3},
		{name: "turnover past int64, wrapped by the writer", first: k.Pub, export: mk([]int64{4_000_000_000_000_000_000, 4_000_000_000_000_000_000, 2_000_000_000_000_000_000}), seq: 3, reason: TurnoverMismatch},
		{name: "one sale of 2^63-1", first: k.Pub, export: mk([]int64{math.MaxInt64}), count: 1},
	}
}
