package receipts

import (
	"bytes"
	"context"
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
// would, and checks that verify names the first bad record and the reason;
// the valid ledgers of the set verify. The same set is run through the
// Python verifier (TestPythonVerifierAgrees).
func TestTamperExport(t *testing.T) {
	for _, tc := range exportCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := VerifyExport(strings.NewReader(tc.export), tc.first, tc.openCheckpoints(t)...)
			if err != nil {
				t.Fatal(err)
			}
			if tc.reason == "" {
				if !rep.OK() || rep.Count != tc.count {
					t.Fatalf("valid export: %+v %v", rep, rep.Problem)
				}
				return
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
				o.Checkpoints = []*Checkpoint{cloudCP}
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
