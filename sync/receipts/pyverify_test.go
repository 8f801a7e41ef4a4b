package receipts

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// python returns the interpreter that runs testdata/verify.py. The suite
// (scripts/test.sh) sets FIELDKIT_PYTHON and installs python3-cryptography,
// and then a missing one is a failure; elsewhere the test is skipped.
func python(t *testing.T) string {
	t.Helper()
	py := os.Getenv("FIELDKIT_PYTHON")
	required := py != ""
	if py == "" {
		var err error
		if py, err = exec.LookPath("python3"); err != nil {
			t.Skip("python3 not installed")
		}
	}
	if out, err := exec.Command(py, "-c", "import cryptography.hazmat.primitives.asymmetric.ed25519").CombinedOutput(); err != nil {
		if required {
			t.Fatalf("%s cannot import cryptography (apt install python3-cryptography): %v %s", py, err, out)
		}
		t.Skipf("%s has no cryptography package", py)
	}
	return py
}

var pyResult = regexp.MustCompile(`(?m)^(?:ok (\d+) records, turnover (-?\d+), head ([0-9a-f]+)|FAIL record (\d+): ([a-z ]+): .*)$`)

// TestPythonVerifierAgrees runs the reference Python verifier, written
// from the README, over every export of the tamper set (valid and
// tampered: key rotations, zero totals, turnovers up to 2^63-1, overflow,
// checkpoints), with and without -O (asserts stripped), and requires it to
// reach the same verdict as VerifyExport: the same count, turnover and
// head, or the same first bad record and reason.
func TestPythonVerifierAgrees(t *testing.T) {
	py := python(t)
	script, err := filepath.Abs("testdata/verify.py")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range exportCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			pem := filepath.Join(dir, "box.pem")
			exp := filepath.Join(dir, "export.ndjson")
			os.WriteFile(pem, PublicPEM(tc.first), 0o644)
			os.WriteFile(exp, []byte(tc.export), 0o644)
			args := []string{script}
			if len(tc.checkpoints) > 0 {
				var b bytes.Buffer
				for _, sc := range tc.checkpoints {
					line, _ := json.Marshal(sc)
					b.Write(append(line, '\n'))
				}
				cpf := filepath.Join(dir, "cp.ndjson")
				os.WriteFile(cpf, b.Bytes(), 0o644)
				args = append(args, "--checkpoint", cpf)
				if tc.cloud != nil {
					ck := filepath.Join(dir, "cloud.pem")
					os.WriteFile(ck, PublicPEM(tc.cloud), 0o644)
					args = append(args, "--cloud-key", ck)
				}
			}
			args = append(args, pem, exp)
			rep, err := VerifyExport(strings.NewReader(tc.export), tc.first, tc.openCheckpoints(t)...)
			if err != nil {
				t.Fatal(err)
			}
			var want string
			if rep.OK() {
				want = fmt.Sprintf("ok %d records, turnover %d, head %s", rep.Count, rep.Turnover, rep.Head)
			} else {
				want = fmt.Sprintf("FAIL record %d: %s", rep.Problem.Seq, rep.Problem.Reason)
			}
			for _, opt := range [][]string{nil, {"-O"}} {
				cmd := exec.Command(py, append(opt, args...)...)
				out, err := cmd.CombinedOutput()
				m := pyResult.FindSubmatch(out)
				if m == nil {
					t.Fatalf("python %v: no verdict (%v):\n%s", opt, err, out)
				}
				var got string
				if len(m[1]) > 0 {
					got = fmt.Sprintf("ok %s records, turnover %s, head %s", m[1], m[2], m[3])
				} else {
					got = fmt.Sprintf("FAIL record %s: %s", m[4], m[5])
				}
				code := cmd.ProcessState.ExitCode()
				if got != want || (rep.OK() != (code == 0)) || (!rep.OK() && code != 1) {
					t.Fatalf("python %v says %q (exit %d), Go says %q (%v)\n%s", opt, got, code, want, rep.Problem, out)
				}
			}
		})
	}
}
