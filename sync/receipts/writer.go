package receipts

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"

	"fieldkit/internal/sqlitex"
)

// The writer is a two-stage pipeline. The builder goroutine (writer)
// gathers appends into a batch, looks up their client ids, and builds and
// signs the records on top of the chain head it keeps in memory; the
// committer goroutine writes a built batch in one transaction, checks
// there that the chain-head row is the head the batch was built on, and
// answers the batch's callers only after the commit (one fsync) returned.
// While batch n commits, batch n+1 is built and keeps taking appends, so
// the signing (which is serial: each record's prev is the hash of the
// previous signature) overlaps the fsync. If batch n does not commit,
// batch n+1 was built on a head that never existed: it is thrown away and
// built again from the head row.

type headRow struct {
	seq      uint64
	hash     string
	turnover int64
	kid      string
	keys     string
}

// row is one record ready to insert.
type row struct {
	seq      uint64
	clientID string // "" for a rotation
	fp       []byte // the order's fingerprint; nil for a rotation
	typ      string
	tsMS     int64
	total    int64
	body     []byte
	sig      []byte
	hash     string
}

// batch is a group of appends built on one chain head.
type batch struct {
	reqs  []*appendReq
	resps []appendResp
	rows  []row
	rowOf []int // rows[k] answers reqs[rowOf[k]]
	base  headRow
	head  headRow
	key   *Key
	// byClient maps the client ids written by this batch to the index of
	// the request whose answer they are.
	byClient map[string]int
	// prev is the batch committing while this one is built: a retry of
	// one of its client ids is answered with its record, which is durable
	// before this batch is committed (or this batch is rebuilt).
	prev      *batch
	rotatedTo *Key
	closed    bool // no more appends after a key rotation
}

type commitResult struct {
	// stale: the head row was not the head the batch was built on; nothing
	// was written or answered and the batch must be built again.
	stale bool
	err   error
}

func (l *Ledger) writer() {
	defer close(l.done)
	toCommit := make(chan *batch)
	results := make(chan commitResult, 1)
	committerDone := make(chan struct{})
	go func() {
		defer close(committerDone)
		l.committer(toCommit, results)
	}()
	defer func() {
		close(toCommit)
		<-committerDone
	}()

	var (
		head     *headRow // nil: read it from the database first
		key      *Key
		inflight *batch
		carry    []*appendReq // to build before anything newly queued
	)
	// settle takes the answer for the batch in flight.
	settle := func(res commitResult) (ok bool) {
		b := inflight
		inflight = nil
		if res.err == nil && !res.stale {
			return true
		}
		head = nil
		if res.stale {
			carry = append(append([]*appendReq(nil), b.reqs...), carry...)
		}
		return false
	}
	shutdown := func(b *batch) {
		if inflight != nil {
			settle(<-results)
		}
		if b != nil {
			carry = append(carry, b.reqs...)
		}
		for _, r := range carry {
			r.resp <- appendResp{err: ErrClosed}
		}
		l.drainClosed()
	}

	for {
		if len(carry) == 0 {
			var resC <-chan commitResult
			if inflight != nil {
				resC = results
			}
			select {
			case r := <-l.reqs:
				carry = append(carry, r)
			case res := <-resC:
				settle(res)
				continue
			case <-l.quit:
				shutdown(nil)
				return
			}
		}
		if head == nil {
			h, k, err := l.loadHead()
			if err != nil {
				for _, r := range carry {
					r.resp <- appendResp{err: err}
				}
				carry = nil
				continue
			}
			head, key = &h, k
		}
		b := &batch{base: *head, head: *head, key: key, prev: inflight, byClient: map[string]int{}}
		// Keep taking appends into b until the batch ahead of it commits;
		// stop between two records as soon as it has, so that the
		// committer never waits for a whole group to be signed.
		var early *commitResult
		stop := func() bool {
			if early == nil && inflight != nil {
				select {
				case res := <-results:
					early = &res
				default:
				}
			}
			return early != nil
		}
		n := min(len(carry), l.o.MaxBatch)
		group := carry[:n:n]
		carry = carry[n:]
		left := l.build(b, l.gather(group, l.o.MaxBatch-n), stop)
		carry = append(left, carry...)
		for inflight != nil {
			var res commitResult
			if early != nil {
				res, early = *early, nil
			} else {
				var reqC <-chan *appendReq
				if !b.closed && len(b.reqs) < l.o.MaxBatch {
					reqC = l.reqs
				}
				select {
				case res = <-results:
				case r := <-reqC:
					left := l.build(b, l.gather([]*appendReq{r}, l.o.MaxBatch-len(b.reqs)-1), stop)
					carry = append(left, carry...)
					continue
				case <-l.quit:
					shutdown(b)
					return
				}
			}
			if !settle(res) {
				carry = append(b.reqs, carry...)
				b = nil
			}
		}
		if b == nil {
			continue
		}
		toCommit <- b
		inflight = b
		head, key = &b.head, b.key
		if b.rotatedTo != nil {
			// The committer swaps the key files after this commit; build
			// nothing more until then.
			settle(<-results)
		}
	}
}

// gather appends to group whatever is already queued, up to room more.
func (l *Ledger) gather(group []*appendReq, room int) []*appendReq {
	for ; room > 0; room-- {
		select {
		case r := <-l.reqs:
			group = append(group, r)
		default:
			return group
		}
	}
	return group
}

func (l *Ledger) drainClosed() {
	for {
		select {
		case r := <-l.reqs:
			r.resp <- appendResp{err: ErrClosed}
		default:
			return
		}
	}
}

// loadHead reads the chain head row and the key that must sign after it.
func (l *Ledger) loadHead() (headRow, *Key, error) {
	var h headRow
	if err := l.db.QueryRow(`SELECT seq, hash, turnover, kid, keys FROM head WHERE id=1`).Scan(&h.seq, &h.hash, &h.turnover, &h.kid, &h.keys); err != nil {
		return h, nil, fmt.Errorf("receipts: read chain head: %w", err)
	}
	l.keyMu.Lock()
	key := l.key
	l.keyMu.Unlock()
	if h.kid != key.ID {
		if err := l.matchKey(); err != nil {
			return h, nil, err
		}
		l.keyMu.Lock()
		key = l.key
		l.keyMu.Unlock()
	}
	return h, key, nil
}

// build adds reqs to b: it answers retries from the ledger, the batch in
// flight or b itself, and signs a record for each new one. It stops early
// when stop says so (checked after each request) and returns the requests
// it did not take.
func (l *Ledger) build(b *batch, reqs []*appendReq, stop func() bool) (left []*appendReq) {
	var ids []string
	for _, r := range reqs {
		if id := r.clientID(); id != "" {
			ids = append(ids, id)
		}
	}
	stored, lookupErr := l.lookupClients(ids)
	full := l.alarmLevel() >= 100
	synced := l.o.Sync.Synced()
	for k, r := range reqs {
		if k > 0 && stop() {
			return reqs[k:]
		}
		l.built.Add(1)
		i := len(b.reqs)
		b.reqs = append(b.reqs, r)
		b.resps = append(b.resps, appendResp{})
		if b.closed {
			// Only a rotation closes a batch, and it is built last.
			b.resps[i] = appendResp{err: errors.New("receipts: internal error: append after rotation in one batch")}
			continue
		}
		if id := r.clientID(); id != "" {
			if j, ok := b.byClient[id]; ok {
				b.resps[i] = replayOf(b.resps[j].s, b.reqs[j].fp, r)
				continue
			}
			if b.prev != nil {
				if j, ok := b.prev.byClient[id]; ok {
					b.resps[i] = replayOf(b.prev.resps[j].s, b.prev.reqs[j].fp, r)
					continue
				}
			}
			if lookupErr != nil {
				b.resps[i] = appendResp{err: lookupErr}
				continue
			}
			if st, ok := stored[id]; ok {
				b.resps[i] = replayOf(st.s, st.fp, r)
				continue
			}
			if full {
				b.resps[i] = appendResp{err: l.refused()}
				continue
			}
			if r.ctx.Err() != nil {
				// The caller gave up before its record was written: nothing
				// to answer for; a retry with the same client_id writes it.
				b.resps[i] = appendResp{err: r.ctx.Err()}
				continue
			}
		}
		var err error
		switch {
		case r.rotate != nil:
			err = l.buildRotation(b, r)
		case r.handover != nil:
			err = l.buildHandover(b, r, synced)
		default:
			err = l.buildSale(b, r, synced)
		}
		if err != nil {
			b.resps[i] = appendResp{err: err}
			continue
		}
		b.rowOf = append(b.rowOf, i)
		rw := &b.rows[len(b.rows)-1]
		b.resps[i] = appendResp{s: Signed{Seq: rw.seq, Record: string(rw.body), Sig: base64.StdEncoding.EncodeToString(rw.sig), Hash: rw.hash}}
		if id := r.clientID(); id != "" {
			b.byClient[id] = i
		}
	}
	return nil
}

// replayOf answers r, whose client_id already has record s written for
// an order with fingerprint fp: the same order gets s again, another
// order is refused. A record stored before fingerprints has none and is
// answered as a retry.
func replayOf(s Signed, fp []byte, r *appendReq) appendResp {
	if fp != nil && r.fp != nil && !bytes.Equal(fp, r.fp) {
		return appendResp{err: errConflict(r.order.ClientID, s.Seq)}
	}
	return appendResp{s: s, replay: true}
}

type storedClient struct {
	s  Signed
	fp []byte
}

// lookupClients returns the stored records of the given client ids, in
// one query.
func (l *Ledger) lookupClients(ids []string) (map[string]storedClient, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	arg, _ := json.Marshal(ids)
	rows, err := l.byClient.Query(string(arg))
	if err != nil {
		return nil, fmt.Errorf("receipts: look up client_id: %w", err)
	}
	defer rows.Close()
	var out map[string]storedClient
	for rows.Next() {
		var id string
		var seq uint64
		var body, sig, fp []byte
		if err := rows.Scan(&id, &seq, &body, &sig, &fp); err != nil {
			return nil, fmt.Errorf("receipts: look up client_id: %w", err)
		}
		if out == nil {
			out = map[string]storedClient{}
		}
		out[id] = storedClient{makeSigned(seq, body, sig), fp}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("receipts: look up client_id: %w", err)
	}
	return out, nil
}

const tsLayout = "2006-01-02T15:04:05.000Z07:00"

var tokenEnc = base32.StdEncoding.WithPadding(base32.NoPadding)

// encodeTail encodes the order's part of its record (appendSaleTail).
// It runs on the caller's goroutine, so that the writer only puts the
// chain fields in front.
func (l *Ledger) encodeTail(o *Order) ([]byte, error) {
	buyer := o.Buyer
	if l.discreet(o) {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("receipts: buyer token: %w", err)
		}
		buyer = &Buyer{Token: tokenEnc.EncodeToString(b[:])}
	}
	tail, err := appendSaleTail(make([]byte, 0, 256), o.Order, o.ClientID, o.Items, o.Total, o.Currency, o.Pay, buyer)
	if err != nil {
		return nil, fmt.Errorf("receipts: encode order %s: %w", o.ClientID, err)
	}
	return tail, nil
}

// discreet reports whether o keeps only an opaque token for its buyer:
// as the order asks, else as the ledger's default says.
func (l *Ledger) discreet(o *Order) bool {
	if o.Discreet != nil {
		return *o.Discreet
	}
	return l.o.DiscreetDefault
}

// buildSale appends the next sale record to b: the chain fields from the
// head it keeps in memory, then the order's tail, both from the canonical
// encoder, written straight after the signing domain so that the message
// is signed without a copy.
func (l *Ledger) buildSale(b *batch, r *appendReq, synced bool) error {
	tail := r.tail
	if tail == nil {
		t, err := l.encodeTail(r.order)
		if err != nil {
			return err
		}
		tail = t
	}
	now := l.o.Clock.Now()
	h := &b.head
	seq := h.seq + 1
	turnover, ok := addTotal(h.turnover, r.order.Total)
	if !ok {
		return &InputError{Code: http.StatusBadRequest, Field: "total", Msg: fmt.Sprintf("%d would take the ledger's turnover past %d (it is %d): this box can take no further sale of this size", r.order.Total, int64(math.MaxInt64), h.turnover)}
	}
	dom := l.o.Domain.Sign
	pre := len(dom) + 1
	m := make([]byte, 0, pre+len(l.boxJSON)+len(l.bootJSON)+len(tail)+len(h.hash)+200)
	m = append(m, dom...)
	m = append(m, 0)
	m = appendHead(m, Version, TypeSale, l.boxJSON, b.key.ID, seq, now.UTC().Format(tsLayout), synced, l.bootJSON, h.hash, turnover)
	m = append(m, tail...)
	sig := ed25519.Sign(b.key.Priv, m)
	body := m[pre:]
	hash := chainHash(body, sig)
	b.rows = append(b.rows, row{seq: seq, clientID: r.order.ClientID, fp: r.fp, typ: TypeSale, tsMS: now.UnixMilli(), total: r.order.Total, body: body, sig: sig, hash: hash})
	h.seq, h.hash, h.turnover = seq, hash, turnover
	return nil
}

// addTotal adds a sale's total to the turnover, reporting overflow.
func addTotal(turnover, total int64) (int64, bool) {
	if total < 0 || turnover > math.MaxInt64-total {
		return 0, false
	}
	return turnover + total, true
}

func chainHash(body, sig []byte) string {
	d := sha256.New()
	d.Write(body)
	d.Write(sig)
	var sum [sha256.Size]byte
	return hex.EncodeToString(d.Sum(sum[:0]))
}

// buildRotation appends a key rotation record, signed by the current key,
// and closes b: what follows is signed by the new key.
func (l *Ledger) buildRotation(b *batch, r *appendReq) error {
	h := &b.head
	rec := &Record{
		V: Version, Type: TypeRotation, Box: l.o.Box, Kid: b.key.ID, Seq: h.seq + 1,
		TS:          l.o.Clock.Now().UTC().Format(tsLayout),
		ClockSynced: l.o.Sync.Synced(),
		Boot:        l.o.BootID, Prev: h.hash, Turnover: h.turnover,
		NewKid: r.rotate.ID, NewKey: base64.StdEncoding.EncodeToString(r.rotate.Pub),
	}
	s, err := signRecordIn(l.o.Domain, rec, b.key.Priv)
	if err != nil {
		return err
	}
	sig, _ := s.RawSig()
	keys := map[string]string{}
	_ = json.Unmarshal([]byte(h.keys), &keys)
	keys[r.rotate.ID] = base64.StdEncoding.EncodeToString(r.rotate.Pub)
	kb, _ := json.Marshal(keys)
	b.rows = append(b.rows, row{seq: rec.Seq, typ: TypeRotation, tsMS: l.o.Clock.Now().UnixMilli(), body: []byte(s.Record), sig: sig, hash: s.Hash})
	h.seq, h.hash = rec.Seq, s.Hash
	h.keys, h.kid = string(kb), r.rotate.ID
	b.key, b.rotatedTo, b.closed = r.rotate, r.rotate, true
	return nil
}

// Insert statements for chunks of insertChunks[i] rows, largest first.
var insertChunks = []int{64, 8, 1}

const insertCols = 9

func insertSQL(n int) string {
	var sb strings.Builder
	sb.WriteString(`INSERT INTO records(seq, client_id, type, ts_ms, total, body, sig, hash, req) VALUES `)
	for i := 0; i < n; i++ {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(`(?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	}
	return sb.String()
}

// committer writes each batch it is handed on one connection of its own,
// with statements prepared once, and reports the outcome.
func (l *Ledger) committer(in <-chan *batch, out chan<- commitResult) {
	ctx := context.Background()
	w, err := l.openWriteConn(ctx)
	if err != nil {
		l.log.Error("receipt writer cannot open its connection", "err", err)
	} else {
		defer w.close()
	}
	for b := range in {
		if err != nil {
			l.answer(b, err)
			out <- commitResult{err: err}
			continue
		}
		out <- l.commitBatch(ctx, w, b)
	}
}

type writeConn struct {
	conn *sql.Conn
	head *sql.Stmt
	upd  *sql.Stmt
	ins  []*sql.Stmt // by insertChunks
	box  *sql.Stmt   // label outbox rows for a batch's sales
}

func (w *writeConn) close() {
	for _, s := range append([]*sql.Stmt{w.head, w.upd, w.box}, w.ins...) {
		if s != nil {
			s.Close()
		}
	}
	w.conn.Close()
}

func (l *Ledger) openWriteConn(ctx context.Context) (*writeConn, error) {
	c, err := l.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("receipts: writer connection: %w", err)
	}
	w := &writeConn{conn: c}
	prep := func(q string) *sql.Stmt {
		if err != nil {
			return nil
		}
		var s *sql.Stmt
		s, err = c.PrepareContext(ctx, q)
		return s
	}
	w.head = prep(`SELECT seq, hash FROM head WHERE id=1`)
	w.upd = prep(`UPDATE head SET seq=?, hash=?, turnover=?, kid=?, keys=? WHERE id=1`)
	for _, n := range insertChunks {
		w.ins = append(w.ins, prep(insertSQL(n)))
	}
	if l.o.LabelOutbox {
		w.box = prep(`INSERT INTO label_outbox(seq) SELECT value FROM json_each(?)`)
	}
	if err != nil {
		w.close()
		return nil, fmt.Errorf("receipts: writer statements: %w", err)
	}
	return w, nil
}

var errStale = errors.New("chain head moved")

// commitBatch writes b in one transaction and answers its callers once
// the commit is durable.
func (l *Ledger) commitBatch(ctx context.Context, w *writeConn, b *batch) commitResult {
	if len(b.rows) > 0 {
		err := l.writeBatch(ctx, w, b)
		if errors.Is(err, errStale) {
			l.log.Warn("the chain head changed under the writer (another process wrote the ledger); rebuilding the batch")
			return commitResult{stale: true}
		}
		if err != nil {
			if sqlitex.IsFull(err) {
				// The disk filled before the alarm did (another writer
				// took the room): say so plainly, and measure again so
				// that the next sales are refused up front.
				err = fmt.Errorf("%w (%v)", ErrNoSpace, err)
				l.refreshUsage(ctx)
			}
			l.answer(b, err)
			return commitResult{err: err}
		}
	}
	if b.rotatedTo != nil {
		l.keyMu.Lock()
		if err := l.finishRotation(b.rotatedTo); err != nil {
			l.log.Error("key rotation recorded but the key file could not be swapped; the ledger finishes it on restart", "err", err)
			l.key = b.rotatedTo
		}
		l.keyMu.Unlock()
	}
	l.mu.Lock()
	if len(b.rows) > 0 {
		l.commits++
		l.committed += uint64(len(b.rows))
	}
	close(l.notify)
	l.notify = make(chan struct{})
	l.mu.Unlock()
	l.answer(b, nil)
	if len(b.rows) > 0 {
		l.refreshUsage(ctx)
	}
	return commitResult{}
}

// answer sends every caller of b its answer; failed, when not nil, is the
// answer of those whose record was to be written.
func (l *Ledger) answer(b *batch, failed error) {
	if failed != nil {
		for _, i := range b.rowOf {
			b.resps[i] = appendResp{err: failed}
		}
	}
	for i, r := range b.reqs {
		r.resp <- b.resps[i]
	}
}

func (l *Ledger) writeBatch(ctx context.Context, w *writeConn, b *batch) (err error) {
	if _, err := w.conn.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
		return fmt.Errorf("receipts: begin: %w", err)
	}
	defer func() {
		if err != nil {
			// After SQLITE_FULL SQLite has rolled back by itself.
			if _, rerr := w.conn.ExecContext(ctx, `ROLLBACK`); rerr != nil && !sqlitex.IsNoTransaction(rerr) {
				l.log.Warn("rollback", "err", rerr)
			}
		}
	}()
	var seq uint64
	var hash string
	if err := w.head.QueryRowContext(ctx).Scan(&seq, &hash); err != nil {
		return fmt.Errorf("receipts: read chain head: %w", err)
	}
	if seq != b.base.seq || hash != b.base.hash {
		return errStale
	}
	rows := b.rows
	args := make([]any, 0, insertChunks[0]*insertCols)
	for len(rows) > 0 {
		k := 0
		for insertChunks[k] > len(rows) {
			k++
		}
		n := insertChunks[k]
		args = args[:0]
		for _, r := range rows[:n] {
			var cid any
			if r.clientID != "" {
				cid = r.clientID
			}
			args = append(args, r.seq, cid, r.typ, r.tsMS, r.total, r.body, r.sig, r.hash, r.fp)
		}
		if _, err := w.ins[k].ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("receipts: insert records %d-%d: %w", rows[0].seq, rows[n-1].seq, err)
		}
		rows = rows[n:]
	}
	if w.box != nil {
		// The label requests commit with their sales, or not at all.
		seqs := make([]byte, 0, 8*len(b.rows))
		seqs = append(seqs, '[')
		for _, r := range b.rows {
			if r.typ == TypeSale {
				if len(seqs) > 1 {
					seqs = append(seqs, ',')
				}
				seqs = strconv.AppendUint(seqs, r.seq, 10)
			}
		}
		seqs = append(seqs, ']')
		if len(seqs) > 2 {
			if _, err := w.box.ExecContext(ctx, string(seqs)); err != nil {
				return fmt.Errorf("receipts: label outbox: %w", err)
			}
		}
	}
	h := b.head
	if _, err := w.upd.ExecContext(ctx, h.seq, h.hash, h.turnover, h.kid, h.keys); err != nil {
		return fmt.Errorf("receipts: update chain head: %w", err)
	}
	if _, err := w.conn.ExecContext(ctx, `COMMIT`); err != nil {
		return fmt.Errorf("receipts: commit: %w", err)
	}
	return nil
}
