package receipts

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"strings"
	"testing"
)

// export returns the ledger's NDJSON lines.
func exportLines(t *testing.T, l *testLedger) []string {
	t.Helper()
	var buf bytes.Buffer
	if _, err := l.Export(context.Background(), &buf, 0, 0); err != nil {
		t.Fatal(err)
	}
	return strings.SplitAfter(strings.TrimSuffix(buf.String(), "\n"), "\n")
}

func fixLast(lines []string) string {
	s := strings.Join(lines, "")
	if !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	return s
}

// TestTamperExport changes an export the way an attacker or a broken copy
// would, and checks that verify names the first bad record and the reason.
func TestTamperExport(t *testing.T) {
	l := openTest(t, nil)
	appendN(t, l, 6)
	first := l.PublicKey().Pub
	priv := l.key.Priv
	clean := exportLines(t, l)
	thief, _ := GenerateKey()

	resign := func(lines []string, k *Key, edit func(*Record)) []string {
		out := append([]string(nil), lines...)
		prev := ""
		for i := range out {
			s, _ := ParseLine([]byte(out[i]))
			r, _ := s.Decode()
			if i == 0 {
				r.Kid = k.ID
				r.Prev = Genesis(r.Box, k.ID)
			} else {
				r.Kid, r.Prev = k.ID, prev
			}
			if edit != nil {
				edit(r)
			}
			ns, _ := signRecord(r, k.Priv)
			prev = ns.Hash
			out[i] = lineOf(t, ns)
		}
		return out
	}

	cases := []struct {
		name   string
		edit   func([]string) []string
		key    ed25519.PublicKey
		cp     *Checkpoint
		seq    uint64
		reason Reason
	}{
		{"flip a byte in an order id", func(ls []string) []string {
			ls[2] = strings.Replace(ls[2], "A-0003", "A-0008", 1)
			return ls
		}, nil, nil, 3, BadSignature},
		{"flip a byte in a price", func(ls []string) []string {
			ls[3] = strings.Replace(ls[3], `\"price\":2500`, `\"price\":2400`, 1)
			return ls
		}, nil, nil, 4, BadSignature},
		{"flip a byte in the signature", func(ls []string) []string {
			s, _ := ParseLine([]byte(ls[1]))
			b := []byte(s.Sig)
			b[10] ^= 0x01
			if b[10] == '+' || b[10] == '/' || b[10] == '=' {
				b[10] = 'A'
			}
			s.Sig = string(b)
			ls[1] = lineOf(t, s)
			return ls
		}, nil, nil, 2, BadSignature},
		{"delete a middle record", func(ls []string) []string {
			return append(ls[:2:2], ls[3:]...)
		}, nil, nil, 3, Gap},
		{"reorder two", func(ls []string) []string {
			ls[2], ls[3] = ls[3], ls[2]
			return ls
		}, nil, nil, 3, OutOfOrder},
		{"duplicate a record", func(ls []string) []string {
			return append(ls[:4:4], append([]string{ls[3]}, ls[4:]...)...)
		}, nil, nil, 5, Duplicate},
		{"truncate the tail, caught by the checkpoint", func(ls []string) []string {
			return ls[:4]
		}, nil, &Checkpoint{Box: "box1", AckedThrough: 6}, 5, Truncated},
		{"re-sign everything with a swapped key", func(ls []string) []string {
			return resign(ls, thief, nil)
		}, nil, nil, 1, UnknownKey},
		{"turnover inflated by someone holding the key", func(ls []string) []string {
			s, _ := ParseLine([]byte(ls[4]))
			r, _ := s.Decode()
			r.Turnover += 100
			ns, _ := signRecord(r, priv)
			ls[4] = lineOf(t, ns)
			return ls
		}, nil, nil, 5, TurnoverMismatch},
		{"a record rewritten with the key breaks the next link", func(ls []string) []string {
			s, _ := ParseLine([]byte(ls[1]))
			r, _ := s.Decode()
			r.Pay = "cash"
			ns, _ := signRecord(r, priv)
			ls[1] = lineOf(t, ns)
			return ls
		}, nil, nil, 3, BrokenLink},
		{"not JSON", func(ls []string) []string {
			ls[2] = "{\"seq\":3,\n"
			return ls
		}, nil, nil, 3, Malformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			key := tc.key
			if key == nil {
				key = first
			}
			lines := tc.edit(append([]string(nil), clean...))
			rep, err := VerifyExport(strings.NewReader(fixLast(lines)), key, tc.cp)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Problem == nil {
				t.Fatalf("tampered export verified: %+v", rep)
			}
			if rep.Problem.Seq != tc.seq || rep.Problem.Reason != tc.reason {
				t.Fatalf("got %q, want record %d: %s", rep.Problem, tc.seq, tc.reason)
			}
			if !strings.HasPrefix(rep.Problem.Error(), "record ") {
				t.Fatalf("message %q does not name the record", rep.Problem)
			}
		})
	}
	rep, err := VerifyExport(strings.NewReader(fixLast(clean)), first, &Checkpoint{AckedThrough: 6, Head: mustParse(t, clean[5]).Hash})
	if err != nil || !rep.OK() || rep.Count != 6 {
		t.Fatalf("clean export: %v %+v", err, rep.Problem)
	}
}

func mustParse(t *testing.T, line string) Signed {
	s, err := ParseLine([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestTamperDatabase edits the SQLite file directly.
func TestTamperDatabase(t *testing.T) {
	cases := []struct {
		name   string
		sql    []string
		cp     bool // keep a cloud checkpoint through seq 6
		dropCP bool // the attacker also deleted the stored checkpoints
		seq    uint64
		reason Reason
	}{
		{"flip a byte", []string{`UPDATE records SET body = CAST(replace(CAST(body AS TEXT), '"qty":2', '"qty":3') AS BLOB) WHERE seq = 4`}, false, false, 4, BadSignature},
		{"delete a middle record", []string{`DELETE FROM records WHERE seq = 3`}, false, false, 3, Gap},
		{"reorder two", []string{
			`UPDATE records SET seq = -1 WHERE seq = 2`,
			`UPDATE records SET seq = 2, client_id = 'x' WHERE seq = 3`,
			`UPDATE records SET seq = 3, client_id = 'y' WHERE seq = -1`}, false, false, 2, OutOfOrder},
		{"truncate the tail and fix the head row", []string{
			`DELETE FROM records WHERE seq > 4`,
			`UPDATE head SET seq = 4, hash = (SELECT hash FROM records WHERE seq = 4)`}, true, false, 5, Truncated},
		{"truncate the tail and the checkpoints, caught by the cloud's copy", []string{
			`DELETE FROM records WHERE seq > 4`,
			`UPDATE head SET seq = 4, hash = (SELECT hash FROM records WHERE seq = 4)`,
			`DELETE FROM checkpoints`}, true, true, 5, Truncated},
		{"truncate the tail without fixing the head row", []string{`DELETE FROM records WHERE seq > 5`}, false, false, 6, Truncated},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := openTest(t, nil)
			ss := appendN(t, l, 6)
			first := l.PublicKey().Pub
			var cloudCP *Checkpoint
			if tc.cp {
				sc := ack(t, l.Ledger, ss[5], 6*4500, testCloudKey(t))
				cloudCP, _ = sc.Open(nil)
			}
			l.Close()
			db := rawDB(t, l.o.Path)
			for _, q := range tc.sql {
				if _, err := db.Exec(q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			db.Close()
			r, err := OpenReader(l.o.Path)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			o := VerifyOptions{First: first}
			if tc.dropCP {
				o.Checkpoint = cloudCP
			}
			rep, err := r.Verify(context.Background(), o)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Problem == nil || rep.Problem.Seq != tc.seq || rep.Problem.Reason != tc.reason {
				t.Fatalf("got %v, want record %d: %s", rep.Problem, tc.seq, tc.reason)
			}
		})
	}
	t.Run("swapped key file", func(t *testing.T) {
		l := openTest(t, nil)
		appendN(t, l, 2)
		thief, _ := GenerateKey()
		rep, err := l.Verify(context.Background(), VerifyOptions{Current: thief.Pub})
		if err != nil || rep.Problem == nil || rep.Problem.Reason != UnknownKey || rep.Problem.Seq != 3 {
			t.Fatalf("%v %v", err, rep.Problem)
		}
		rep, _ = l.Verify(context.Background(), VerifyOptions{First: thief.Pub})
		if rep.Problem == nil || rep.Problem.Reason != UnknownKey || rep.Problem.Seq != 1 {
			t.Fatalf("%v", rep.Problem)
		}
	})
}
