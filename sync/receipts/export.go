package receipts

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
)

// MaxLine is the longest export line accepted (a receipt with MaxItems
// long items stays well below it).
const MaxLine = 1 << 20

// Export writes records after seq `after` as NDJSON, one Signed per line.
func (l *Reader) Export(ctx context.Context, w io.Writer, after uint64, limit int) (int, error) {
	bw := bufio.NewWriter(w)
	n := 0
	err := l.Range(ctx, after, limit, func(s Signed) error {
		n++
		return WriteLine(bw, s)
	})
	if err != nil {
		return n, err
	}
	return n, bw.Flush()
}

// WriteLine writes s as one NDJSON line.
func WriteLine(w io.Writer, s Signed) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	_, err = w.Write(b)
	return err
}

// LineReader reads an NDJSON export one Signed at a time.
type LineReader struct {
	sc   *bufio.Scanner
	line int
}

// NewLineReader reads from r.
func NewLineReader(r io.Reader) *LineReader {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), MaxLine)
	return &LineReader{sc: sc}
}

// Line is the number of the line last read.
func (lr *LineReader) Line() int { return lr.line }

// Next returns the next record; ok false at the end. A line that is not a
// record is an error naming the line.
func (lr *LineReader) Next() (Signed, bool, error) {
	for lr.sc.Scan() {
		lr.line++
		b := lr.sc.Bytes()
		if len(b) == 0 {
			continue
		}
		s, err := ParseLine(b)
		if err != nil {
			return Signed{}, false, fmt.Errorf("line %d: %w", lr.line, err)
		}
		return s, true, nil
	}
	if err := lr.sc.Err(); err != nil {
		return Signed{}, false, fmt.Errorf("line %d: %w", lr.line+1, err)
	}
	return Signed{}, false, nil
}

// ParseLine parses one export line strictly.
func ParseLine(b []byte) (Signed, error) {
	if err := CheckJSON(b); err != nil {
		return Signed{}, fmt.Errorf("not an export line: %w", err)
	}
	var s Signed
	if err := strictUnmarshal(b, &s); err != nil {
		return Signed{}, fmt.Errorf("not an export line: %w", err)
	}
	if s.Record == "" || s.Sig == "" {
		return Signed{}, fmt.Errorf("not an export line: record and sig are required")
	}
	return s, nil
}

// VerifyExport checks an NDJSON export that starts at record 1 against the
// box's first public key and any checkpoints. A line that cannot be
// parsed is reported as a malformed record.
func VerifyExport(r io.Reader, first ed25519.PublicKey, cps ...*Checkpoint) (*Report, error) {
	lr := NewLineReader(r)
	c := NewChain("", first)
	var parseErr error
	src := func() (Signed, bool, error) {
		s, ok, err := lr.Next()
		if err != nil {
			parseErr = err
			return Signed{}, false, nil
		}
		return s, ok, nil
	}
	rep, err := VerifyAll(c, src, cps...)
	if err != nil {
		return nil, err
	}
	if parseErr != nil && rep.Problem == nil {
		rep.Problem = &Problem{Seq: c.Seq + 1, Reason: Malformed, Detail: parseErr.Error()}
	}
	return rep, nil
}
