// Package ingest is the reference cloud side of the receipt uplink: an
// http.Handler that takes gzip NDJSON batches, verifies every signature
// and link, dedupes on (box, seq, hash), stores the records in its own
// SQLite file and answers with a signed checkpoint. The cloud team builds
// on it; the agent's tests and benchmarks drain into it.
package ingest

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ed25519"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"sync"
	"time"

	"fieldkit/internal/clock"
	"fieldkit/internal/sqlitex"
	"fieldkit/sync/receipts"
	"fieldkit/sync/wire"
)

// The protocol's names, kept here for the server's own code; they are
// defined in sync/wire, which the box's uplink imports instead of this
// package.
const (
	HeaderBoxKey  = wire.HeaderBoxKey
	MaxBatchBytes = wire.MaxBatchBytes
)

// Response is the JSON answer to a batch (on 200 and 409).
type Response = wire.Response

// Options for Open.
type Options struct {
	DB string
	// Key signs checkpoints.
	Key ed25519.PrivateKey
	// Trust maps a box id to the public key of its record 1. A box not
	// listed is trusted on first use when TrustOnFirstUse is set, with the
	// key it sends in HeaderBoxKey; otherwise it is refused.
	Trust           map[string]ed25519.PublicKey
	TrustOnFirstUse bool
	// Token, when set, is the bearer token every request must carry.
	Token string
	// OnAlarm hears forks and bad records (kind "fork", "invalid").
	OnAlarm func(box, kind, msg string)
	Clock   clock.Clock
	Log     *slog.Logger
}

// Server is the ingest handler.
type Server struct {
	o   Options
	db  *sql.DB
	log *slog.Logger

	mu     sync.Mutex // one batch at a time: the chain is sequential
	chains map[string]*receipts.Chain
}

const schema = `
CREATE TABLE IF NOT EXISTS boxes (
	box TEXT PRIMARY KEY, seq INTEGER NOT NULL, head TEXT NOT NULL,
	turnover INTEGER NOT NULL, sign_kid TEXT NOT NULL, keys TEXT NOT NULL,
	last_ts TEXT NOT NULL, checkpoint TEXT);
CREATE TABLE IF NOT EXISTS records (
	box TEXT NOT NULL, seq INTEGER NOT NULL, hash TEXT NOT NULL,
	body BLOB NOT NULL, sig TEXT NOT NULL, received_ms INTEGER NOT NULL,
	PRIMARY KEY (box, seq));
CREATE TABLE IF NOT EXISTS alarms (
	at_ms INTEGER NOT NULL, box TEXT NOT NULL, kind TEXT NOT NULL, msg TEXT NOT NULL);
`

// Open opens (creating) the ingest database.
func Open(o Options) (*Server, error) {
	if len(o.Key) != ed25519.PrivateKeySize {
		return nil, errors.New("ingest: a checkpoint signing key is required")
	}
	if o.Clock == nil {
		o.Clock = clock.Real()
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	db, err := sqlitex.Open(o.DB, sqlitex.Options{Sync: sqlitex.Full})
	if err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	if _, err := db.Exec(schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("ingest: %w", err)
	}
	return &Server{o: o, db: db, log: o.Log.With("part", "ingest"), chains: map[string]*receipts.Chain{}}, nil
}

// Close closes the database.
func (s *Server) Close() error { return s.db.Close() }

// PublicKey is the checkpoint key.
func (s *Server) PublicKey() ed25519.PublicKey { return s.o.Key.Public().(ed25519.PublicKey) }

type httpErr struct {
	code int
	msg  string
}

func (e *httpErr) Error() string { return e.msg }

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// ServeHTTP takes one batch.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		writeJSON(w, http.StatusMethodNotAllowed, Response{Error: "POST a gzip NDJSON batch"})
		return
	}
	if s.o.Token != "" && r.Header.Get("Authorization") != "Bearer "+s.o.Token {
		writeJSON(w, http.StatusUnauthorized, Response{Error: "missing or wrong bearer token"})
		return
	}
	batch, err := readBatch(r)
	if err != nil {
		var he *httpErr
		if errors.As(err, &he) {
			writeJSON(w, he.code, Response{Error: he.msg})
			return
		}
		writeJSON(w, http.StatusBadRequest, Response{Error: err.Error()})
		return
	}
	code, resp := s.ingest(r.Context(), batch, r.Header.Get(HeaderBoxKey))
	writeJSON(w, code, resp)
}

type batch struct {
	box  string
	ss   []receipts.Signed
	recs []*receipts.Record
}

func readBatch(r *http.Request) (*batch, error) {
	var body io.Reader = r.Body
	switch enc := r.Header.Get("Content-Encoding"); enc {
	case "gzip":
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			return nil, &httpErr{http.StatusBadRequest, "body is not gzip: " + err.Error()}
		}
		defer zr.Close()
		body = zr
	case "", "identity":
	default:
		return nil, &httpErr{http.StatusUnsupportedMediaType, "content encoding " + enc + ": send gzip"}
	}
	raw, err := io.ReadAll(io.LimitReader(body, MaxBatchBytes+1))
	if err != nil {
		return nil, &httpErr{http.StatusBadRequest, "reading batch: " + err.Error()}
	}
	if len(raw) > MaxBatchBytes {
		return nil, &httpErr{http.StatusRequestEntityTooLarge, fmt.Sprintf("batch larger than %d bytes", MaxBatchBytes)}
	}
	b, err := parseBatch(raw, runtime.GOMAXPROCS(0))
	if err != nil {
		return nil, err
	}
	if len(b.ss) == 0 {
		return nil, &httpErr{http.StatusBadRequest, "empty batch"}
	}
	want := fmt.Sprintf("%s:%d-%d", b.box, b.recs[0].Seq, b.recs[len(b.recs)-1].Seq)
	if got := r.Header.Get("Idempotency-Key"); got != want {
		return nil, &httpErr{http.StatusBadRequest, fmt.Sprintf("Idempotency-Key %q; this batch is %q", got, want)}
	}
	return b, nil
}

// parseBatch parses the NDJSON lines of a batch and the records in them
// on several goroutines (JSON decoding is a fifth of the ingest's CPU),
// then checks that they all come from one box. An error names the first
// bad line.
func parseBatch(raw []byte, workers int) (*batch, error) {
	type line struct {
		n    int // 1-based line number
		text []byte
	}
	var lines []line
	for n := 1; len(raw) > 0; n++ {
		text := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			text, raw = raw[:i], raw[i+1:]
		} else {
			raw = nil
		}
		text = bytes.TrimSuffix(text, []byte{'\r'})
		if len(text) == 0 {
			continue
		}
		if len(text) > receipts.MaxLine {
			return nil, &httpErr{http.StatusBadRequest, fmt.Sprintf("line %d: longer than %d bytes", n, receipts.MaxLine)}
		}
		lines = append(lines, line{n, text})
	}
	b := &batch{ss: make([]receipts.Signed, len(lines)), recs: make([]*receipts.Record, len(lines))}
	errs := make([]error, len(lines))
	workers = max(1, min(workers, len(lines)/64+1))
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(lines); i += workers {
				sg, err := receipts.ParseLine(lines[i].text)
				if err != nil {
					errs[i] = fmt.Errorf("line %d: %w", lines[i].n, err)
					continue
				}
				rec, err := sg.Decode()
				if err != nil {
					errs[i] = fmt.Errorf("line %d: %v", lines[i].n, err)
					continue
				}
				b.ss[i], b.recs[i] = sg, rec
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return nil, &httpErr{http.StatusBadRequest, err.Error()}
		}
		if i == 0 {
			b.box = b.recs[0].Box
		} else if b.recs[i].Box != b.box {
			return nil, &httpErr{http.StatusBadRequest, fmt.Sprintf("line %d: box %q in a batch from box %q", lines[i].n, b.recs[i].Box, b.box)}
		}
	}
	return b, nil
}

func (s *Server) alarm(tx *sql.Tx, box, kind, msg string) {
	s.log.Error("receipt ingest alarm", "box", box, "kind", kind, "msg", msg)
	_, _ = tx.Exec(`INSERT INTO alarms(at_ms, box, kind, msg) VALUES (?, ?, ?, ?)`, s.o.Clock.Now().UnixMilli(), box, kind, msg)
	if s.o.OnAlarm != nil {
		s.o.OnAlarm(box, kind, msg)
	}
}

func (s *Server) chain(ctx context.Context, tx *sql.Tx, box, boxKey string, firstSeq uint64) (*receipts.Chain, bool, error) {
	if c, ok := s.chains[box]; ok {
		return c, false, nil
	}
	var seq uint64
	var head, kid, keys, lastTS string
	var turnover int64
	err := tx.QueryRowContext(ctx, `SELECT seq, head, turnover, sign_kid, keys, last_ts FROM boxes WHERE box=?`, box).Scan(&seq, &head, &turnover, &kid, &keys, &lastTS)
	if err == nil {
		m := map[string]string{}
		if err := json.Unmarshal([]byte(keys), &m); err != nil {
			return nil, false, err
		}
		c := &receipts.Chain{Box: box, Seq: seq, Head: head, Turnover: turnover, SignKid: kid, Keys: map[string]ed25519.PublicKey{}}
		for id, k := range m {
			b, _ := base64.StdEncoding.DecodeString(k)
			c.Keys[id] = b
		}
		c.LastTS, _ = time.Parse(time.RFC3339Nano, lastTS)
		s.chains[box] = c
		return c, false, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return nil, false, err
	}
	if firstSeq != 1 {
		return nil, false, &skipErr{}
	}
	first, ok := s.o.Trust[box]
	if !ok {
		if !s.o.TrustOnFirstUse {
			return nil, false, &httpErr{http.StatusForbidden, fmt.Sprintf("box %q is not known to this cloud; register its public key", box)}
		}
		kb, err := base64.StdEncoding.DecodeString(boxKey)
		if err != nil || len(kb) != ed25519.PublicKeySize {
			return nil, false, &httpErr{http.StatusBadRequest, fmt.Sprintf("box %q is new: send its first public key in %s", box, HeaderBoxKey)}
		}
		first = kb
	}
	c := receipts.NewChain(box, first)
	s.chains[box] = c
	return c, true, nil
}

func (s *Server) ingest(ctx context.Context, b *batch, boxKey string) (int, Response) {
	s.mu.Lock()
	defer s.mu.Unlock()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return http.StatusServiceUnavailable, Response{Error: err.Error()}
	}
	defer tx.Rollback()
	c, _, err := s.chain(ctx, tx, b.box, boxKey, b.recs[0].Seq)
	if _, ok := err.(*skipErr); ok {
		return http.StatusConflict, Response{ExpectedSeq: 1, Error: fmt.Sprintf("this cloud holds nothing from box %q; send from seq 1", b.box)}
	}
	if err != nil {
		var he *httpErr
		if errors.As(err, &he) {
			delete(s.chains, b.box)
			return he.code, Response{Error: he.msg}
		}
		return http.StatusInternalServerError, Response{Error: err.Error()}
	}
	saved := *c
	saved.Keys = make(map[string]ed25519.PublicKey, len(c.Keys))
	for k, v := range c.Keys {
		saved.Keys[k] = v
	}
	restore := func() { *c = saved }

	ok := c.VerifySignatures(b.ss, b.recs, runtime.GOMAXPROCS(0))
	ins, err := tx.PrepareContext(ctx, `INSERT INTO records(box, seq, hash, body, sig, received_ms) VALUES (?, ?, ?, ?, ?, ?)`)
	if err != nil {
		restore()
		return http.StatusInternalServerError, Response{Error: err.Error()}
	}
	defer ins.Close()
	now := s.o.Clock.Now().UnixMilli()
	resp := Response{}
	code := http.StatusOK
	for i, sg := range b.ss {
		r := b.recs[i]
		if r.Seq <= c.Seq {
			var hash string
			if err := tx.QueryRowContext(ctx, `SELECT hash FROM records WHERE box=? AND seq=?`, b.box, r.Seq).Scan(&hash); err != nil {
				restore()
				return http.StatusInternalServerError, Response{Error: fmt.Sprintf("seq %d: %v", r.Seq, err)}
			}
			if hash == receipts.ChainHash([]byte(sg.Record), mustSig(sg)) {
				resp.Duplicates++
				continue
			}
			msg := fmt.Sprintf("seq %d arrived again with another hash: the box's chain forked (tamper alarm)", r.Seq)
			s.alarm(tx, b.box, "fork", msg)
			code, resp.Fork, resp.Error, resp.ExpectedSeq = http.StatusConflict, true, msg, c.Seq+1
			break
		}
		if r.Seq > c.Seq+1 {
			code, resp.Error, resp.ExpectedSeq = http.StatusConflict, fmt.Sprintf("seq %d skips ahead; send from seq %d", r.Seq, c.Seq+1), c.Seq+1
			break
		}
		if _, _, err := c.CheckVerified(sg, r, ok[i]); err != nil {
			s.alarm(tx, b.box, "invalid", err.Error())
			code, resp.Error = http.StatusUnprocessableEntity, err.Error()
			break
		}
		if _, err := ins.ExecContext(ctx, b.box, r.Seq, c.Head, []byte(sg.Record), sg.Sig, now); err != nil {
			restore()
			return http.StatusInternalServerError, Response{Error: err.Error()}
		}
		resp.Accepted++
	}
	keys := map[string]string{}
	for id, k := range c.Keys {
		keys[id] = base64.StdEncoding.EncodeToString(k)
	}
	kb, _ := json.Marshal(keys)
	var sc *receipts.SignedCheckpoint
	if c.Seq > 0 {
		cp, err := receipts.SignCheckpoint(receipts.Checkpoint{Box: b.box, AckedThrough: c.Seq, Head: c.Head, Turnover: c.Turnover,
			TS: s.o.Clock.Now().UTC().Format(time.RFC3339)}, s.o.Key)
		if err != nil {
			restore()
			return http.StatusInternalServerError, Response{Error: err.Error()}
		}
		sc = &cp
	}
	cpText := ""
	if sc != nil {
		cb, _ := json.Marshal(sc)
		cpText = string(cb)
	}
	if c.Seq == 0 {
		// Nothing accepted from a new box: remember nothing but the alarm,
		// so that its first real batch is trusted afresh.
		delete(s.chains, b.box)
		if err := tx.Commit(); err != nil {
			return http.StatusServiceUnavailable, Response{Error: err.Error()}
		}
		return code, resp
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO boxes(box, seq, head, turnover, sign_kid, keys, last_ts, checkpoint) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT(box) DO UPDATE SET seq=excluded.seq, head=excluded.head, turnover=excluded.turnover, sign_kid=excluded.sign_kid,
		keys=excluded.keys, last_ts=excluded.last_ts, checkpoint=excluded.checkpoint`,
		b.box, c.Seq, c.Head, c.Turnover, c.SignKid, string(kb), c.LastTS.Format(time.RFC3339Nano), cpText); err != nil {
		restore()
		return http.StatusInternalServerError, Response{Error: err.Error()}
	}
	if err := tx.Commit(); err != nil {
		restore()
		return http.StatusServiceUnavailable, Response{Error: err.Error()}
	}
	resp.AckedThrough, resp.Checkpoint = c.Seq, sc
	return code, resp
}

type skipErr struct{}

func (*skipErr) Error() string { return "skip" }

func mustSig(s receipts.Signed) []byte {
	b, _ := s.RawSig()
	return b
}

// Stored is what the cloud holds for a box.
type Stored struct {
	Seq      uint64
	Head     string
	Turnover int64
	Count    int
}

// Box returns the stored state of box.
func (s *Server) Box(ctx context.Context, box string) (Stored, error) {
	var st Stored
	err := s.db.QueryRowContext(ctx, `SELECT seq, head, turnover, (SELECT count(*) FROM records WHERE box=?) FROM boxes WHERE box=?`, box, box).Scan(&st.Seq, &st.Head, &st.Turnover, &st.Count)
	if errors.Is(err, sql.ErrNoRows) {
		return st, nil
	}
	return st, err
}

// Seqs returns every stored seq of box in order, with how often each
// occurs (it is a primary key, so always once; tests check it anyway).
func (s *Server) Seqs(ctx context.Context, box string) ([]uint64, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT seq FROM records WHERE box=? ORDER BY seq`, box)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []uint64
	for rows.Next() {
		var n uint64
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// Alarms returns the recorded alarms as "box kind: msg".
func (s *Server) Alarms(ctx context.Context) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT box, kind, msg FROM alarms ORDER BY at_ms`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var b, k, m string
		if err := rows.Scan(&b, &k, &m); err != nil {
			return nil, err
		}
		out = append(out, b+" "+k+": "+m)
	}
	return out, rows.Err()
}
