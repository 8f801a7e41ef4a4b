package preflight

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// Ops in the sign-off log.
const (
	OpSign   = "sign"
	OpUnsign = "unsign"
	OpReset  = "reset"
)

// Entry is one line of the sign-off log: who did what, when. The log is
// both the record an auditor reads and the state replayed at start.
type Entry struct {
	At   time.Time `json:"at"`
	Op   string    `json:"op"`
	Item string    `json:"item,omitempty"`
	By   string    `json:"by"`
	Note string    `json:"note,omitempty"`
}

// LogFile is the sign-off log's name in the data dir.
const LogFile = "preflight-signoffs.jsonl"

// Log is the append-only sign-off log.
type Log struct {
	f *os.File
}

// OpenLog opens (creating) the log in dir and returns its entries. A
// torn last line, from a power cut mid-write, is dropped; a bad line
// elsewhere is an error naming it, since it means the file was edited.
func OpenLog(dir string) (*Log, []Entry, error) {
	path := filepath.Join(dir, LogFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("preflight: sign-off log: %w", err)
	}
	entries, good, err := ParseLog(f)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("preflight: %s: %w", path, err)
	}
	// Cut a torn tail so that the next entry starts on a line of its own.
	if err := f.Truncate(good); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("preflight: %s: %w", path, err)
	}
	if _, err := f.Seek(good, io.SeekStart); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("preflight: %s: %w", path, err)
	}
	return &Log{f: f}, entries, nil
}

// ParseLog reads log lines from r. It returns the entries and the byte
// length of the well-formed prefix.
func ParseLog(r io.Reader) ([]Entry, int64, error) {
	br := bufio.NewReader(r)
	var (
		out  []Entry
		good int64
		line int
	)
	for {
		b, err := br.ReadBytes('\n')
		if len(b) == 0 && err == io.EOF {
			return out, good, nil
		}
		line++
		complete := err == nil
		if err != nil && err != io.EOF {
			return nil, 0, err
		}
		var e Entry
		derr := json.Unmarshal(bytes.TrimSpace(b), &e)
		if derr == nil {
			derr = e.valid()
		}
		if derr != nil || !complete {
			// Only the very last line may be torn.
			if _, perr := br.Peek(1); perr == io.EOF {
				return out, good, nil
			}
			return nil, 0, fmt.Errorf("line %d: %v", line, derr)
		}
		out = append(out, e)
		good += int64(len(b))
	}
}

func (e Entry) valid() error {
	switch e.Op {
	case OpSign, OpUnsign:
		if e.Item == "" {
			return fmt.Errorf("%s without an item", e.Op)
		}
	case OpReset:
	default:
		return fmt.Errorf("unknown op %q", e.Op)
	}
	return nil
}

// Append writes e as one line and syncs it: a sign-off shown on the page
// is on disk.
func (l *Log) Append(e Entry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if _, err := l.f.Write(append(b, '\n')); err != nil {
		return err
	}
	return l.f.Sync()
}

// Close closes the file.
func (l *Log) Close() error { return l.f.Close() }
