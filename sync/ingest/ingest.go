// Package ingest is the reference cloud side of the receipt uplink: an
// http.Handler that takes gzip NDJSON batches from enrolled boxes,
// verifies every signature and link, stores each record exactly once by
// (box, seq) and answers with a signed checkpoint. It stores into SQLite
// (one file: the demo and the tests) or PostgreSQL (a fleet: several
// ingest instances on one database), with the same rules and answers.
// Operators read per-box backlog and contact, alarms and the fleet's
// end-of-show report from its JSON endpoints and /metrics.
package ingest

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"fieldkit/internal/clock"
	"fieldkit/sync/receipts"
	"fieldkit/sync/wire"
)

// The protocol's names, kept here for the server's own code; they are
// defined in sync/wire, which the box's uplink imports instead of this
// package.
const (
	HeaderBoxKey  = wire.HeaderBoxKey
	HeaderBoxHead = wire.HeaderBoxHead
	MaxBatchBytes = wire.MaxBatchBytes
)

// Response is the JSON answer to a batch (on 200 and 409).
type Response = wire.Response

// Options for Open.
type Options struct {
	// Store holds what the ingest accepts (OpenSQLite, OpenPostgres); the
	// Server does not close it. When nil, DB names a SQLite file that
	// Open opens and Close closes.
	Store Store
	DB    string
	// Key signs checkpoints.
	Key ed25519.PrivateKey
	// TrustOnFirstUse lets a box that no admin enrolled send without a
	// token, its chain anchored to the key it sends in HeaderBoxKey with
	// record 1. Only for a demo or a closed network: anyone who can reach
	// the ingest can then start a chain under any unenrolled box id.
	// Enrolled boxes always need their token.
	TrustOnFirstUse bool
	// AdminToken, when set, is the bearer token the operators' JSON
	// endpoints need (/metrics stays open for the scraper).
	AdminToken string
	// OnAlarm hears forks and bad records (AlarmFork, AlarmInvalid).
	OnAlarm func(box, kind, msg string)
	Clock   clock.Clock
	Log     *slog.Logger
}

// Server is the ingest handler. It keeps no chain state between
// batches: every batch reads its box's state in the transaction that
// holds the box's lock, so that instances sharing a database agree.
type Server struct {
	o       Options
	store   Store
	ownDB   bool
	log     *slog.Logger
	metrics *metrics
}

// Open builds the ingest on o.Store, or on a SQLite file at o.DB.
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
	s := &Server{o: o, store: o.Store, log: o.Log.With("part", "ingest")}
	if s.store == nil {
		st, err := OpenSQLite(o.DB)
		if err != nil {
			return nil, err
		}
		s.store, s.ownDB = st, true
	}
	s.metrics = newMetrics(s)
	return s, nil
}

// Close closes the database Open opened.
func (s *Server) Close() error {
	if s.ownDB {
		return s.store.Close()
	}
	return nil
}

// Store is the server's store.
func (s *Server) Store() Store { return s.store }

// PublicKey is the checkpoint key.
func (s *Server) PublicKey() ed25519.PublicKey { return s.o.Key.Public().(ed25519.PublicKey) }

// Enroll registers box (at venue) and returns its new bearer token,
// which replaces any earlier one. With pub the box's chain must start
// with that key; without, the key the box sends with its first batch is
// pinned (enrollment by token).
func (s *Server) Enroll(ctx context.Context, box, venue string, pub ed25519.PublicKey) (string, error) {
	if err := validBoxID(box); err != nil {
		return "", err
	}
	if pub != nil && len(pub) != ed25519.PublicKeySize {
		return "", errors.New("ingest: enroll: the public key is not an Ed25519 key")
	}
	raw := make([]byte, 32)
	rand.Read(raw)
	token := base64.RawURLEncoding.EncodeToString(raw)
	if err := s.store.Enroll(ctx, Enrollment{Box: box, Venue: venue, FirstKey: pub, TokenHash: TokenHash(token)}); err != nil {
		return "", err
	}
	return token, nil
}

func validBoxID(box string) error {
	if box == "" || len(box) > 128 || strings.ContainsAny(box, "\x00\n\r") {
		return fmt.Errorf("ingest: box id %q: 1 to 128 bytes, no NUL or line breaks", box)
	}
	return nil
}

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
	start := time.Now()
	code, resp := s.serveBatch(r)
	writeJSON(w, code, resp)
	s.metrics.batch(code, resp, time.Since(start))
}

func (s *Server) serveBatch(r *http.Request) (int, Response) {
	if r.Method != http.MethodPost {
		return http.StatusMethodNotAllowed, Response{Error: "POST a gzip NDJSON batch"}
	}
	// Who sends is settled before the body is read: the box named by the
	// Idempotency-Key must present its own token.
	key := r.Header.Get("Idempotency-Key")
	i := strings.LastIndexByte(key, ':')
	if i <= 0 {
		return http.StatusBadRequest, Response{Error: fmt.Sprintf("Idempotency-Key %q: want BOX:FIRST-LAST", key)}
	}
	box := key[:i]
	en, err := s.store.Enrollment(r.Context(), box)
	if err != nil {
		s.log.Error("reading an enrollment", "box", box, "err", err)
		return http.StatusServiceUnavailable, Response{Error: "the ingest cannot read its database"}
	}
	switch {
	case en != nil:
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(TokenHash(tok)), []byte(en.TokenHash)) != 1 {
			return http.StatusUnauthorized, Response{Error: fmt.Sprintf("missing or wrong bearer token for box %q", box)}
		}
	case !s.o.TrustOnFirstUse:
		return http.StatusForbidden, Response{Error: fmt.Sprintf("box %q is not enrolled with this cloud; an admin registers it (receipts ingest enroll)", box)}
	}
	b, err := readBatch(r)
	if err != nil {
		var he *httpErr
		if errors.As(err, &he) {
			return he.code, Response{Error: he.msg}
		}
		return http.StatusBadRequest, Response{Error: err.Error()}
	}
	var head uint64
	if v := r.Header.Get(HeaderBoxHead); v != "" {
		head, _ = strconv.ParseUint(v, 10, 64)
	}
	return s.ingest(r.Context(), b, r.Header.Get(HeaderBoxKey), en, head)
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

func (s *Server) alarm(ctx context.Context, tx Tx, box, kind, msg string) {
	s.log.Error("receipt ingest alarm", "box", box, "kind", kind, "msg", msg)
	if err := tx.Alarm(ctx, Alarm{At: s.o.Clock.Now().UTC(), Box: box, Kind: kind, Msg: msg}); err != nil {
		s.log.Error("storing an alarm", "box", box, "err", err)
	}
	s.metrics.alarms.WithLabelValues(kind).Inc()
	if s.o.OnAlarm != nil {
		s.o.OnAlarm(box, kind, msg)
	}
}

// ingest applies one parsed batch in one transaction on its box. The
// answer is 2xx only once that transaction committed.
func (s *Server) ingest(ctx context.Context, b *batch, boxKey string, en *Enrollment, boxHead uint64) (int, Response) {
	tx, err := s.store.Begin(ctx, b.box)
	if err != nil {
		s.log.Error("starting a batch", "box", b.box, "err", err)
		return http.StatusServiceUnavailable, Response{Error: "the ingest cannot reach its database"}
	}
	defer tx.Rollback()
	st, err := tx.State(ctx)
	if err != nil {
		return http.StatusInternalServerError, Response{Error: fmt.Sprintf("reading box %q: %v", b.box, err)}
	}
	var c *receipts.Chain
	pin := false
	if st == nil {
		if b.recs[0].Seq != 1 {
			return http.StatusConflict, Response{ExpectedSeq: 1, Error: fmt.Sprintf("this cloud holds nothing from box %q; send from seq 1", b.box)}
		}
		var first ed25519.PublicKey
		if en != nil {
			first = en.FirstKey
		}
		if first == nil {
			kb, err := base64.StdEncoding.DecodeString(boxKey)
			if err != nil || len(kb) != ed25519.PublicKeySize {
				return http.StatusBadRequest, Response{Error: fmt.Sprintf("box %q is new: send its first public key in %s", b.box, HeaderBoxKey)}
			}
			first, pin = kb, en != nil
		}
		st = &BoxState{Box: b.box, FirstKey: first}
		c = receipts.NewChain(b.box, first)
	} else {
		c = st.chain()
	}

	// Every signature is checked before any record is judged: a record
	// whose signature does not verify is neither stored nor evidence of
	// a fork, since anyone can send bytes under a box's name.
	ok := c.VerifySignatures(b.ss, b.recs, runtime.GOMAXPROCS(0))
	last := b.recs[len(b.recs)-1].Seq
	hashes := map[uint64]string{}
	if b.recs[0].Seq <= c.Seq {
		if hashes, err = tx.Hashes(ctx, b.recs[0].Seq, min(last, c.Seq)); err != nil {
			return http.StatusInternalServerError, Response{Error: fmt.Sprintf("reading stored records: %v", err)}
		}
	}
	now := s.o.Clock.Now()
	rows := make([]Row, 0, len(b.ss))
	resp := Response{}
	code := http.StatusOK
	for i, sg := range b.ss {
		r := b.recs[i]
		if r.Seq <= c.Seq {
			stored, found := hashes[r.Seq]
			if !found {
				return http.StatusInternalServerError, Response{Error: fmt.Sprintf("box %q: the store holds no record %d below its head %d", b.box, r.Seq, c.Seq)}
			}
			if stored == receipts.ChainHash([]byte(sg.Record), mustSig(sg)) {
				resp.Duplicates++
				continue
			}
			if !ok[i] {
				msg := fmt.Sprintf("record %d: bad signature: it differs from the stored record %d but is not signed by a key of box %q, so it is no evidence of a fork", r.Seq, r.Seq, b.box)
				s.alarm(ctx, tx, b.box, AlarmInvalid, msg)
				code, resp.Error = http.StatusUnprocessableEntity, msg
				break
			}
			msg := fmt.Sprintf("seq %d arrived again with another hash, signed by the box's key %s: the box's chain forked (tamper alarm)", r.Seq, r.Kid)
			s.alarm(ctx, tx, b.box, AlarmFork, msg)
			code, resp.Fork, resp.Error, resp.ExpectedSeq = http.StatusConflict, true, msg, c.Seq+1
			break
		}
		if r.Seq > c.Seq+1 {
			code, resp.Error, resp.ExpectedSeq = http.StatusConflict, fmt.Sprintf("seq %d skips ahead; send from seq %d", r.Seq, c.Seq+1), c.Seq+1
			break
		}
		if _, _, err := c.CheckVerified(sg, r, ok[i]); err != nil {
			s.alarm(ctx, tx, b.box, AlarmInvalid, err.Error())
			code, resp.Error = http.StatusUnprocessableEntity, err.Error()
			break
		}
		hashes[r.Seq] = c.Head
		row := Row{Seq: r.Seq, Hash: c.Head, Body: []byte(sg.Record), Sig: sg.Sig, ReceivedMS: now.UnixMilli(), Type: r.Type, TS: c.LastTS,
			Pay: r.Pay, Total: r.Total, Currency: r.Currency}
		if r.Type == receipts.TypeSale {
			row.Items = r.Items
		}
		rows = append(rows, row)
		resp.Accepted++
	}
	if len(rows) > 0 {
		if err := tx.Insert(ctx, rows); err != nil {
			s.log.Error("storing records", "box", b.box, "err", err)
			return http.StatusServiceUnavailable, Response{Error: fmt.Sprintf("storing records: %v", err)}
		}
	}
	if c.Seq == 0 {
		// Nothing accepted from a new box: keep only the alarm, so that
		// its first real batch starts the chain afresh.
		if err := tx.Commit(ctx); err != nil {
			return http.StatusServiceUnavailable, Response{Error: err.Error()}
		}
		return code, resp
	}
	if pin && resp.Accepted > 0 {
		if err := tx.PinKey(ctx, st.FirstKey); err != nil {
			return http.StatusInternalServerError, Response{Error: fmt.Sprintf("pinning the first key: %v", err)}
		}
	}
	cp, err := receipts.SignCheckpoint(receipts.Checkpoint{Box: b.box, AckedThrough: c.Seq, Head: c.Head, Turnover: c.Turnover,
		TS: now.UTC().Format(time.RFC3339)}, s.o.Key)
	if err != nil {
		return http.StatusInternalServerError, Response{Error: err.Error()}
	}
	cb, _ := json.Marshal(cp)
	st.Seq, st.Head, st.Turnover, st.SignKid, st.Keys, st.LastTS = c.Seq, c.Head, c.Turnover, c.SignKid, c.Keys, c.LastTS
	st.Checkpoint, st.LastContact = string(cb), now
	if boxHead > 0 {
		st.BoxHead = boxHead
	}
	if err := tx.Save(ctx, st); err != nil {
		return http.StatusInternalServerError, Response{Error: fmt.Sprintf("saving box %q: %v", b.box, err)}
	}
	if err := tx.Commit(ctx); err != nil {
		s.log.Error("committing a batch", "box", b.box, "err", err)
		return http.StatusServiceUnavailable, Response{Error: "the batch was not committed: " + err.Error()}
	}
	resp.AckedThrough, resp.Checkpoint = c.Seq, &cp
	return code, resp
}

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
	boxes, err := s.store.Boxes(ctx)
	if err != nil {
		return st, err
	}
	for _, b := range boxes {
		if b.Box == box {
			st.Seq, st.Turnover = b.AckedThrough, b.Turnover
		}
	}
	err = s.store.Records(ctx, box, 0, func(sg receipts.Signed) error {
		st.Count++
		st.Head = sg.Hash
		return nil
	})
	return st, err
}

// Seqs returns every stored seq of box in order.
func (s *Server) Seqs(ctx context.Context, box string) ([]uint64, error) {
	var out []uint64
	err := s.store.Records(ctx, box, 0, func(sg receipts.Signed) error {
		out = append(out, sg.Seq)
		return nil
	})
	return out, err
}

// Alarms returns the recorded alarms, oldest first, as "box kind: msg".
func (s *Server) Alarms(ctx context.Context) ([]string, error) {
	as, err := s.store.Alarms(ctx, 1<<20)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(as))
	for i, a := range as {
		out[len(as)-1-i] = a.Box + " " + a.Kind + ": " + a.Msg
	}
	return out, nil
}
