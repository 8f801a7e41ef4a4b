package receipts

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"fieldkit/internal/clock"
	"fieldkit/internal/clocksync"
	"fieldkit/internal/deps"
	"fieldkit/internal/sqlitex"
	"fieldkit/internal/topic"
)

// Sentinel errors.
var (
	// ErrDiskFull: the ledger reached its disk budget and refuses new sales.
	ErrDiskFull = errors.New("receipt ledger disk budget is full: new receipts are refused until the backlog is synced and pruned or the budget is raised")
	// ErrNoSpace: the disk itself is (nearly) full; new sales are refused
	// until space is freed.
	ErrNoSpace = errors.New("the disk holding the receipt ledger is full: new receipts are refused until space is freed on it")
	// ErrClosed: the ledger is closed.
	ErrClosed = errors.New("receipt ledger is closed")
	// ErrNotFound: no record with that seq (never written, or pruned).
	ErrNotFound = errors.New("no such receipt")
	// ErrKeyMismatch: the key file is not the key that signs this chain.
	ErrKeyMismatch = errors.New("receipt key does not match the ledger")
	// ErrCheckpoint: the cloud's checkpoint disagrees with the ledger.
	ErrCheckpoint = errors.New("checkpoint does not match the ledger")
)

// Publisher is the event bus as the ledger uses it.
type Publisher interface {
	Publish(topic string, payload []byte)
}

// Options for Open.
type Options struct {
	Path    string // SQLite file
	KeyFile string // PKCS#8 PEM, created 0600 on first run
	Box     string
	// Currency the box sells in (ISO 4217); default EUR.
	Currency        string
	DiscreetDefault bool
	// DiskBudget in bytes for the database pages in use; 0 means none.
	// The budget in force is the smaller of it and what the disk can
	// still hold (FreeSpace).
	DiskBudget int64
	// FreeSpace returns the bytes still free where the ledger lives
	// (nil: statfs of its directory).
	FreeSpace func() (int64, error)
	// MaxBatch caps how many appends share one transaction (default 512).
	// 1 commits every receipt on its own: the naive mode the benchmark
	// compares against.
	MaxBatch int
	Clock    clock.Clock
	Sync     SyncStatus // nil: the kernel's NTP state
	BootID   string     // "": read from /proc
	Bus      Publisher  // may be nil
	Log      *slog.Logger
	// OnAlarm, if set, hears every disk alarm change (level 0, 80, 95, 100).
	OnAlarm func(level int, msg string)
	// LabelOutbox stores a pickup label request with every new sale, in
	// the sale's transaction; the printer side drains it (PendingLabels,
	// LabelDone), so that no acknowledged sale goes without its label.
	LabelOutbox bool
	// Domain signs the records (zero: Real). The ledger records it at
	// creation and refuses to open in another one.
	Domain Domain
}

// Ledger is the receipt store. Appends go through one writer goroutine
// that commits whatever has queued in one transaction (group commit).
type Ledger struct {
	*Reader
	o   Options
	db  *sql.DB
	log *slog.Logger

	// Encoded once: the box and boot id as JSON strings.
	boxJSON, bootJSON []byte
	// byClient finds stored records by client id (a JSON array of ids).
	byClient *sql.Stmt

	keyMu sync.Mutex
	key   *Key

	reqs chan *appendReq
	quit chan struct{}
	done chan struct{}
	once sync.Once
	// queued counts appends handed to the writer, built those it has
	// built into a batch (tests wait on them).
	queued, built atomic.Int64

	mu        sync.Mutex
	usage     int64
	budget    int64 // in force at the last measurement
	ofDisk    bool  // budget is the disk's room, not the configured one
	alarm     int
	notify    chan struct{} // closed and replaced after every commit
	commits   uint64
	committed uint64
}

type appendReq struct {
	ctx    context.Context
	order  *Order
	tail   []byte // the order's part of the record bytes (encodeTail)
	fp     []byte // orderFingerprint: tells a retry from a reused client_id
	rotate *Key   // a rotation record announcing this key
	// handover, when set, is a hand-over record of a stored sale.
	handover *handoverReq
	resp     chan appendResp
}

type appendResp struct {
	s      Signed
	replay bool
	err    error
}

const schema = `
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS head (
	id INTEGER PRIMARY KEY CHECK (id = 1),
	seq INTEGER NOT NULL, hash TEXT NOT NULL, turnover INTEGER NOT NULL,
	kid TEXT NOT NULL, keys TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
	seq INTEGER PRIMARY KEY, client_id TEXT UNIQUE, type TEXT NOT NULL,
	ts_ms INTEGER NOT NULL, total INTEGER NOT NULL,
	body BLOB NOT NULL, sig BLOB NOT NULL, hash TEXT NOT NULL,
	req BLOB);
CREATE TABLE IF NOT EXISTS anchor (
	id INTEGER PRIMARY KEY CHECK (id = 1),
	seq INTEGER NOT NULL, hash TEXT NOT NULL, turnover INTEGER NOT NULL,
	kid TEXT NOT NULL, keys TEXT NOT NULL, ts TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS label_outbox (seq INTEGER PRIMARY KEY);
CREATE TABLE IF NOT EXISTS key_history (
	seq INTEGER PRIMARY KEY, body BLOB NOT NULL, sig BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS uplink (
	id INTEGER PRIMARY KEY CHECK (id = 1), acked_through INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS pickup_refusals (
	id INTEGER PRIMARY KEY, ts_ms INTEGER NOT NULL, sale INTEGER NOT NULL,
	handover INTEGER NOT NULL, by TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoints (
	acked_through INTEGER PRIMARY KEY, head TEXT NOT NULL,
	checkpoint TEXT NOT NULL, sig TEXT NOT NULL, key TEXT NOT NULL,
	received_ms INTEGER NOT NULL);
`

// Open opens (creating on first run) the ledger and its key, and starts
// the writer. Close stops it.
func Open(o Options) (*Ledger, error) {
	if o.Box == "" {
		return nil, errors.New("receipts: box id is empty")
	}
	if o.Currency == "" {
		o.Currency = "EUR"
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 512
	}
	o.Clock = deps.Clock(o.Clock)
	if o.Sync == nil {
		o.Sync = clocksync.Kernel{}
	}
	o.Log = deps.Log(o.Log)
	o.Domain = o.Domain.orReal()
	if o.BootID == "" {
		id, err := ReadBootID("")
		if err != nil {
			return nil, fmt.Errorf("receipts: %w", err)
		}
		o.BootID = id
	}
	key, created, err := LoadOrCreateKey(o.KeyFile)
	if err != nil {
		return nil, err
	}
	db, err := sqlitex.Open(o.Path, sqlitex.Options{Sync: sqlitex.Full})
	if err != nil {
		return nil, fmt.Errorf("receipts: %w", err)
	}
	l := &Ledger{Reader: &Reader{db: db, box: o.Box, dom: o.Domain}, o: o, db: db, key: key, log: o.Log.With("part", "receipts"),
		reqs: make(chan *appendReq, 1024), quit: make(chan struct{}), done: make(chan struct{}),
		notify: make(chan struct{})}
	if err := l.init(created); err != nil {
		db.Close()
		return nil, err
	}
	l.boxJSON, l.bootJSON = jsonString(o.Box), jsonString(o.BootID)
	l.byClient, err = db.Prepare(`SELECT client_id, seq, body, sig, req FROM records WHERE client_id IN (SELECT value FROM json_each(?))`)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("receipts: %w", err)
	}
	l.refreshUsage(context.Background())
	go l.writer()
	return l, nil
}

func (l *Ledger) init(created bool) error {
	if _, err := l.db.Exec(schema); err != nil {
		return fmt.Errorf("receipts: create tables: %w", err)
	}
	// Ledgers made before the request fingerprint get its column; their
	// old records have none and any retry of them is answered as before.
	var hasReq int
	if err := l.db.QueryRow(`SELECT count(*) FROM pragma_table_info('records') WHERE name='req'`).Scan(&hasReq); err != nil {
		return fmt.Errorf("receipts: %w", err)
	}
	if hasReq == 0 {
		if _, err := l.db.Exec(`ALTER TABLE records ADD COLUMN req BLOB`); err != nil {
			return fmt.Errorf("receipts: add column req: %w", err)
		}
	}
	tx, err := l.db.Begin()
	if err != nil {
		return fmt.Errorf("receipts: %w", err)
	}
	defer tx.Rollback()
	var box string
	err = tx.QueryRow(`SELECT v FROM meta WHERE k='box'`).Scan(&box)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		keys, _ := json.Marshal(map[string]string{l.key.ID: base64.StdEncoding.EncodeToString(l.key.Pub)})
		if _, err := tx.Exec(`INSERT INTO meta(k, v) VALUES ('box', ?), ('first_kid', ?), ('domain', ?)`, l.o.Box, l.key.ID, l.o.Domain.Name); err != nil {
			return fmt.Errorf("receipts: %w", err)
		}
		if _, err := tx.Exec(`INSERT INTO head(id, seq, hash, turnover, kid, keys) VALUES (1, 0, ?, 0, ?, ?)`,
			l.o.Domain.GenesisHash(l.o.Box, l.key.ID), l.key.ID, string(keys)); err != nil {
			return fmt.Errorf("receipts: %w", err)
		}
		if _, err := tx.Exec(`INSERT INTO uplink(id, acked_through) VALUES (1, 0)`); err != nil {
			return fmt.Errorf("receipts: %w", err)
		}
		l.log.Info("new receipt ledger", "box", l.o.Box, "kid", l.key.ID, "new_key", created)
	case err != nil:
		return fmt.Errorf("receipts: %w", err)
	case box != l.o.Box:
		return fmt.Errorf("receipts: ledger %s belongs to box %q, the config says %q; a box id cannot change under an existing chain", l.o.Path, box, l.o.Box)
	default:
		dom, err := readDomain(tx)
		if err != nil {
			return err
		}
		if dom.Name != l.o.Domain.Name {
			return fmt.Errorf("receipts: ledger %s is a %s ledger, opened as a %s one; a rehearsal ledger and the sales ledger are separate files", l.o.Path, dom.Name, l.o.Domain.Name)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("receipts: %w", err)
	}
	return l.matchKey()
}

// matchKey makes sure the loaded key is the one the chain head expects,
// finishing a key rotation that a crash interrupted.
func (l *Ledger) matchKey() error {
	var kid string
	if err := l.db.QueryRow(`SELECT kid FROM head WHERE id=1`).Scan(&kid); err != nil {
		return fmt.Errorf("receipts: %w", err)
	}
	l.keyMu.Lock()
	defer l.keyMu.Unlock()
	if kid == l.key.ID {
		return nil
	}
	if next, err := LoadKey(l.o.KeyFile + ".next"); err == nil && next.ID == kid {
		if err := l.finishRotation(next); err != nil {
			return err
		}
		return nil
	}
	if cur, err := LoadKey(l.o.KeyFile); err == nil && cur.ID == kid {
		l.key = cur // rotated by another process (the CLI)
		return nil
	}
	return fmt.Errorf("receipts: %s holds key %s but the chain is signed by %s: %w; restore the right key file", l.o.KeyFile, l.key.ID, kid, ErrKeyMismatch)
}

// finishRotation keeps the old key beside the new one (for the record)
// and puts the new key in place. keyMu is held.
func (l *Ledger) finishRotation(next *Key) error {
	old := l.o.KeyFile + "." + l.key.ID + ".retired"
	if err := os.Rename(l.o.KeyFile, old); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("receipts: retire key: %w", err)
	}
	if err := os.Rename(l.o.KeyFile+".next", l.o.KeyFile); err != nil {
		return fmt.Errorf("receipts: install new key: %w", err)
	}
	l.key = next
	l.log.Info("receipt key rotated", "kid", next.ID)
	return nil
}

// Close stops the writer (answering queued appends with ErrClosed) and
// closes the database.
func (l *Ledger) Close() error {
	l.once.Do(func() { close(l.quit) })
	<-l.done
	l.byClient.Close()
	return l.db.Close()
}

// Box is the ledger's box id.
func (l *Ledger) Box() string { return l.o.Box }

// PublicKey is the current signing key.
func (l *Ledger) PublicKey() *Key {
	l.keyMu.Lock()
	defer l.keyMu.Unlock()
	return &Key{Pub: l.key.Pub, ID: l.key.ID}
}

// Committed returns a channel closed after the next commit, for waiters
// such as the uplink.
func (l *Ledger) Committed() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.notify
}

// Stats are the writer's counters.
type Stats struct {
	Commits uint64 // transactions committed
	Records uint64 // records written
}

func (l *Ledger) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Stats{Commits: l.commits, Records: l.committed}
}

// orderFingerprint is SHA-256 of the order as decoded (re-encoded, so
// that spacing and key order do not count): the same client_id with
// another fingerprint is another sale, not a retry.
//
// A discreet order's fingerprint leaves the buyer out: the ledger keeps
// nothing derived from a discreet buyer's name, phone or email, not even
// a hash that a list of names could be tried against. A retry of it with
// another buyer is answered as a retry.
func orderFingerprint(o *Order, discreet bool) []byte {
	if discreet {
		c := *o
		c.Buyer = nil
		o = &c
	}
	b, _ := json.Marshal(o)
	h := sha256.Sum256(b)
	return h[:]
}

// Append validates o and writes it as the next signed record, answering
// only once it is durably committed. replay is true when client_id was
// seen before with the same order: the first receipt is returned and
// nothing is written. The same client_id with a different order is an
// *InputError with code 409 naming the stored seq.
func (l *Ledger) Append(ctx context.Context, o Order) (s Signed, replay bool, err error) {
	if err := o.Validate(l.o.Currency); err != nil {
		return Signed{}, false, err
	}
	tail, err := l.encodeTail(&o)
	if err != nil {
		return Signed{}, false, err
	}
	return l.submit(ctx, &appendReq{ctx: ctx, order: &o, tail: tail, fp: orderFingerprint(&o, l.discreet(&o))})
}

// Rotate makes a new key and writes a rotation record signed by the old
// one; the chain goes on under the new key.
func (l *Ledger) Rotate(ctx context.Context) (Signed, error) {
	k, err := GenerateKey()
	if err != nil {
		return Signed{}, err
	}
	// The new key is on disk before the record that announces it, so a
	// crash between the two never leaves a chain nobody can extend.
	if err := WriteKey(l.o.KeyFile+".next", k); err != nil {
		return Signed{}, err
	}
	s, _, err := l.submit(ctx, &appendReq{ctx: ctx, rotate: k})
	return s, err
}

func (l *Ledger) submit(ctx context.Context, r *appendReq) (Signed, bool, error) {
	r.resp = make(chan appendResp, 1)
	select {
	case l.reqs <- r:
		l.queued.Add(1)
	case <-l.quit:
		return Signed{}, false, ErrClosed
	case <-ctx.Done():
		return Signed{}, false, ctx.Err()
	}
	// Once queued, the answer is awaited even if ctx ends: the record may
	// be in the transaction, and the caller must not be told it failed.
	select {
	case a := <-r.resp:
		return a.s, a.replay, a.err
	case <-l.done:
		select {
		case a := <-r.resp:
			return a.s, a.replay, a.err
		default:
			return Signed{}, false, ErrClosed
		}
	}
}

// Get returns record seq.
func (l *Reader) Get(ctx context.Context, seq uint64) (Signed, error) {
	var body, sig []byte
	err := l.db.QueryRowContext(ctx, `SELECT body, sig FROM records WHERE seq=?`, seq).Scan(&body, &sig)
	if errors.Is(err, sql.ErrNoRows) {
		return Signed{}, fmt.Errorf("receipt %d: %w", seq, ErrNotFound)
	}
	if err != nil {
		return Signed{}, fmt.Errorf("receipt %d: %w", seq, err)
	}
	return makeSigned(seq, body, sig), nil
}

// Range calls fn for each record with seq > after, in order, at most limit
// (0: all), stopping at fn's first error.
func (l *Reader) Range(ctx context.Context, after uint64, limit int, fn func(Signed) error) error {
	q := `SELECT seq, body, sig FROM records WHERE seq > ? ORDER BY seq`
	args := []any{after}
	if limit > 0 {
		q += ` LIMIT ?`
		args = append(args, limit)
	}
	rows, err := l.db.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("receipts: read: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var seq uint64
		var body, sig []byte
		if err := rows.Scan(&seq, &body, &sig); err != nil {
			return fmt.Errorf("receipts: read: %w", err)
		}
		if err := fn(makeSigned(seq, body, sig)); err != nil {
			return err
		}
	}
	return rows.Err()
}

// PendingLabels returns up to limit sales whose pickup label is still to
// be handed to the printer, oldest first.
func (l *Reader) PendingLabels(ctx context.Context, limit int) ([]Signed, error) {
	rows, err := l.db.QueryContext(ctx, `SELECT r.seq, r.body, r.sig FROM label_outbox o JOIN records r ON r.seq = o.seq ORDER BY o.seq LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("receipts: label outbox: %w", err)
	}
	defer rows.Close()
	var out []Signed
	for rows.Next() {
		var seq uint64
		var body, sig []byte
		if err := rows.Scan(&seq, &body, &sig); err != nil {
			return nil, fmt.Errorf("receipts: label outbox: %w", err)
		}
		out = append(out, makeSigned(seq, body, sig))
	}
	return out, rows.Err()
}

// LabelDone takes seq's label out of the outbox: the printer's durable
// queue holds it now.
func (l *Ledger) LabelDone(ctx context.Context, seq uint64) error {
	if _, err := l.db.ExecContext(ctx, `DELETE FROM label_outbox WHERE seq = ?`, seq); err != nil {
		return fmt.Errorf("receipts: label outbox: %w", err)
	}
	return nil
}

// LabelBacklog is how many pickup labels wait in the outbox.
func (l *Reader) LabelBacklog(ctx context.Context) (int, error) {
	var n int
	if err := l.db.QueryRowContext(ctx, `SELECT count(*) FROM label_outbox`).Scan(&n); err != nil {
		return 0, fmt.Errorf("receipts: label outbox: %w", err)
	}
	return n, nil
}

// Head is the chain head: the last seq, its hash and the turnover.
type Head struct {
	Seq      uint64 `json:"seq"`
	Hash     string `json:"hash"`
	Turnover int64  `json:"turnover"`
	Kid      string `json:"kid"`
}

func (l *Reader) Head(ctx context.Context) (Head, error) {
	var h Head
	err := l.db.QueryRowContext(ctx, `SELECT seq, hash, turnover, kid FROM head WHERE id=1`).Scan(&h.Seq, &h.Hash, &h.Turnover, &h.Kid)
	if err != nil {
		return h, fmt.Errorf("receipts: chain head: %w", err)
	}
	return h, nil
}

// Backlog is what the cloud has not acknowledged yet.
type Backlog struct {
	Count        uint64    `json:"count"`
	AckedThrough uint64    `json:"acked_through"`
	Head         uint64    `json:"head"`
	Oldest       time.Time `json:"oldest,omitzero"`
}

// Backlog counts unsynced records and finds the oldest one's time.
func (l *Reader) Backlog(ctx context.Context) (Backlog, error) {
	var b Backlog
	err := l.db.QueryRowContext(ctx, `SELECT h.seq, u.acked_through FROM head h, uplink u`).Scan(&b.Head, &b.AckedThrough)
	if err != nil {
		return b, fmt.Errorf("receipts: backlog: %w", err)
	}
	if b.Head > b.AckedThrough {
		b.Count = b.Head - b.AckedThrough
		var ms int64
		if err := l.db.QueryRowContext(ctx, `SELECT ts_ms FROM records WHERE seq > ? ORDER BY seq LIMIT 1`, b.AckedThrough).Scan(&ms); err == nil {
			b.Oldest = time.UnixMilli(ms).UTC()
		}
	}
	return b, nil
}

// Unsynced returns records after from, in order, up to maxRecords and
// about maxBytes of stored bytes (always at least one record).
func (l *Ledger) Unsynced(ctx context.Context, after uint64, maxRecords, maxBytes int) ([]Signed, error) {
	var out []Signed
	size := 0
	errStop := errors.New("stop")
	err := l.Range(ctx, after, maxRecords, func(s Signed) error {
		n := len(s.Record) + len(s.Sig) + len(s.Hash) + 40
		if len(out) > 0 && size+n > maxBytes {
			return errStop
		}
		size += n
		out = append(out, s)
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return nil, err
	}
	return out, nil
}

// Ack stores the cloud's acknowledgement: acked_through and its signed
// checkpoint, in one transaction. The checkpoint must name this box and
// the hash the ledger has at acked_through, or ErrCheckpoint is returned
// and nothing is stored.
func (l *Ledger) Ack(ctx context.Context, cp *Checkpoint, signed SignedCheckpoint) error {
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("receipts: ack: %w", err)
	}
	defer tx.Rollback()
	if cp.Box != l.o.Box {
		return fmt.Errorf("%w: checkpoint is for box %q", ErrCheckpoint, cp.Box)
	}
	var hash string
	err = tx.QueryRowContext(ctx, `SELECT hash FROM records WHERE seq=?`, cp.AckedThrough).Scan(&hash)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%w: the cloud acknowledges seq %d, which this ledger does not hold", ErrCheckpoint, cp.AckedThrough)
	}
	if err != nil {
		return fmt.Errorf("receipts: ack: %w", err)
	}
	if hash != cp.Head {
		return fmt.Errorf("%w: seq %d hashes to %.16s… here and %.16s… in the cloud (a fork)", ErrCheckpoint, cp.AckedThrough, hash, cp.Head)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE uplink SET acked_through = max(acked_through, ?) WHERE id=1`, cp.AckedThrough); err != nil {
		return fmt.Errorf("receipts: ack: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO checkpoints(acked_through, head, checkpoint, sig, key, received_ms) VALUES (?, ?, ?, ?, ?, ?)`,
		cp.AckedThrough, cp.Head, signed.Checkpoint, signed.Sig, signed.Key, l.o.Clock.Now().UnixMilli()); err != nil {
		return fmt.Errorf("receipts: ack: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("receipts: ack: %w", err)
	}
	return nil
}

// LatestCheckpoint returns the newest stored checkpoint (nil if none).
func (l *Reader) LatestCheckpoint(ctx context.Context) (*SignedCheckpoint, error) {
	var s SignedCheckpoint
	err := l.db.QueryRowContext(ctx, `SELECT checkpoint, sig, key FROM checkpoints ORDER BY acked_through DESC LIMIT 1`).Scan(&s.Checkpoint, &s.Sig, &s.Key)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("receipts: checkpoint: %w", err)
	}
	return &s, nil
}

// Prune deletes synced records older than before. The chain head record
// and every checkpoint stay; the last pruned record's hash, turnover and
// keys become the anchor that verification resumes from.
func (l *Ledger) Prune(ctx context.Context, before time.Time) (int, error) {
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("receipts: prune: %w", err)
	}
	defer tx.Rollback()
	var acked, head uint64
	if err := tx.QueryRowContext(ctx, `SELECT h.seq, u.acked_through FROM head h, uplink u`).Scan(&head, &acked); err != nil {
		return 0, fmt.Errorf("receipts: prune: %w", err)
	}
	var last sql.NullInt64
	// A record whose pickup label is still to print stays.
	if err := tx.QueryRowContext(ctx, `SELECT max(seq) FROM records WHERE seq <= ? AND seq < ? AND ts_ms < ?
		AND seq < coalesce((SELECT min(seq) FROM label_outbox), 9223372036854775807)`, acked, head, before.UnixMilli()).Scan(&last); err != nil {
		return 0, fmt.Errorf("receipts: prune: %w", err)
	}
	if !last.Valid {
		return 0, nil
	}
	// Verify the prefix being dropped, so that the anchor carries the keys
	// announced in it and a hash the chain really had.
	c, err := l.startChain(ctx, tx)
	if err != nil {
		return 0, err
	}
	rows, err := tx.QueryContext(ctx, `SELECT seq, body, sig FROM records WHERE seq <= ? ORDER BY seq`, last.Int64)
	if err != nil {
		return 0, fmt.Errorf("receipts: prune: %w", err)
	}
	for rows.Next() {
		var seq uint64
		var body, sig []byte
		if err := rows.Scan(&seq, &body, &sig); err != nil {
			rows.Close()
			return 0, fmt.Errorf("receipts: prune: %w", err)
		}
		if _, _, err := c.Check(makeSigned(seq, body, sig)); err != nil {
			rows.Close()
			return 0, fmt.Errorf("receipts: prune refused, the ledger does not verify: %w", err)
		}
	}
	rows.Close()
	keys := map[string]string{}
	for id, k := range c.Keys {
		keys[id] = base64.StdEncoding.EncodeToString(k)
	}
	kb, _ := json.Marshal(keys)
	if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO anchor(id, seq, hash, turnover, kid, keys, ts) VALUES (1, ?, ?, ?, ?, ?, ?)`,
		c.Seq, c.Head, c.Turnover, c.SignKid, string(kb), c.LastTS.Format(time.RFC3339Nano)); err != nil {
		return 0, fmt.Errorf("receipts: prune: %w", err)
	}
	// The rotation records go on proving, from the first key, which key
	// signs the records that stay.
	if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO key_history(seq, body, sig) SELECT seq, body, sig FROM records WHERE seq <= ? AND type = ?`, last.Int64, TypeRotation); err != nil {
		return 0, fmt.Errorf("receipts: prune: %w", err)
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM records WHERE seq <= ?`, last.Int64)
	if err != nil {
		return 0, fmt.Errorf("receipts: prune: %w", err)
	}
	n, _ := res.RowsAffected()
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("receipts: prune: %w", err)
	}
	l.refreshUsage(ctx)
	return int(n), nil
}

type querier interface {
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
}

// startChain returns the chain state verification starts from: the
// anchor left by pruning, or genesis with the box's first key.
func (l *Ledger) startChain(ctx context.Context, q querier) (*Chain, error) {
	c, p, err := startChain(ctx, q, l.o.Domain, l.o.Box, nil)
	if err == nil && p != nil {
		err = p
	}
	return c, err
}

// startChain returns the chain state verification of the stored records
// starts from. The one trust root is first, the key given by whoever
// verifies (nil: the first key the ledger itself recorded, which proves
// the chain intact but not whose it is). Every later key must come from a
// rotation record signed by the key before it: after a prune those
// records are kept in key_history and are checked here, one by one, from
// the trust root. The anchor row only says where the stored records
// resume (seq, hash, turnover); the key it names must be the key the
// verified rotations lead to, and the keys it lists are never trusted.
// A ledger that fails this is a Problem, not an error.
func startChain(ctx context.Context, q querier, dom Domain, box string, first *Key) (*Chain, *Problem, error) {
	root := first
	if root == nil {
		k, err := recordedFirstKey(ctx, q)
		if err != nil {
			return nil, nil, err
		}
		root = k
	}
	c := NewChainIn(dom, box, root.Pub)
	var a struct {
		seq      uint64
		hash     string
		kid, ts  string
		turnover int64
	}
	err := q.QueryRowContext(ctx, `SELECT seq, hash, turnover, kid, ts FROM anchor WHERE id=1`).Scan(&a.seq, &a.hash, &a.turnover, &a.kid, &a.ts)
	if errors.Is(err, sql.ErrNoRows) {
		return c, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("receipts: anchor: %w", err)
	}
	rows, err := q.QueryContext(ctx, `SELECT seq, body, sig FROM key_history WHERE seq <= ? ORDER BY seq`, a.seq)
	if err != nil {
		return nil, nil, fmt.Errorf("receipts: key history: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var seq uint64
		var body, sig []byte
		if err := rows.Scan(&seq, &body, &sig); err != nil {
			return nil, nil, fmt.Errorf("receipts: key history: %w", err)
		}
		if p := c.checkRotation(makeSigned(seq, body, sig)); p != nil {
			return nil, p, nil
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("receipts: key history: %w", err)
	}
	if a.kid != c.SignKid {
		return nil, &Problem{Seq: a.seq + 1, Reason: UnknownKey, Detail: fmt.Sprintf(
			"the ledger's anchor row names key %s as the signer after seq %d, but trusted key %s and the rotations it signed lead to key %s; no key is trusted because the database names it",
			a.kid, a.seq, root.ID, c.SignKid)}, nil
	}
	c.Seq, c.Head, c.Turnover = a.seq, a.hash, a.turnover
	c.LastTS, _ = time.Parse(time.RFC3339Nano, a.ts)
	return c, nil, nil
}

// recordedFirstKey is the first key as the ledger recorded it at its
// creation.
func recordedFirstKey(ctx context.Context, q querier) (*Key, error) {
	var kid, keys string
	if err := q.QueryRowContext(ctx, `SELECT v FROM meta WHERE k='first_kid'`).Scan(&kid); err != nil {
		return nil, fmt.Errorf("receipts: first key: %w", err)
	}
	if err := q.QueryRowContext(ctx, `SELECT keys FROM head WHERE id=1`).Scan(&keys); err != nil {
		return nil, fmt.Errorf("receipts: keys: %w", err)
	}
	m := map[string]string{}
	_ = json.Unmarshal([]byte(keys), &m)
	b, err := base64.StdEncoding.DecodeString(m[kid])
	if err != nil || len(b) != ed25519.PublicKeySize || KeyID(b) != kid {
		return nil, fmt.Errorf("receipts: first key %s not recorded", kid)
	}
	return &Key{Pub: b, ID: kid}, nil
}

// diskReserve is room kept free on the disk beyond the ledger's pages:
// the WAL grows to its 4 MB auto-checkpoint size before it is reused, and
// the print queue shares the disk.
const diskReserve = 6 << 20

// refreshUsage measures the database against the disk budget in force
// (the configured one or the disk's free room, whichever is smaller) and
// raises or clears the alarm.
func (l *Ledger) refreshUsage(ctx context.Context) {
	var pages, free, size int64
	if err := l.db.QueryRowContext(ctx, `SELECT p.page_count, f.freelist_count, s.page_size FROM pragma_page_count p, pragma_freelist_count f, pragma_page_size s`).Scan(&pages, &free, &size); err != nil {
		l.log.Warn("cannot measure the ledger size", "err", err)
		return
	}
	// Pages in use, as the database sees them (WAL frames included). The
	// WAL file itself is reused after each checkpoint and stays near its
	// 4 MB auto-checkpoint size: it is headroom on top of the budget.
	used := (pages - free) * size
	budget, ofDisk := l.o.DiskBudget, false
	avail, err := l.freeSpace()
	if err != nil {
		l.log.Warn("cannot measure the free disk space", "err", err)
	} else if room := used + max(0, avail-diskReserve); budget <= 0 || room < budget {
		// Free pages inside the file are reused before the file grows.
		budget, ofDisk = room+free*size, true
	}
	if budget <= 0 {
		return
	}
	pct := used * 100 / budget
	level := 0
	switch {
	case pct >= 100:
		level = 100
	case pct >= 95:
		level = 95
	case pct >= 80:
		level = 80
	}
	l.mu.Lock()
	l.usage, l.budget, l.ofDisk = used, budget, ofDisk
	old := l.alarm
	l.alarm = level
	l.mu.Unlock()
	if level == old {
		return
	}
	var msg string
	switch {
	case level == 0:
		msg = "receipt ledger back under 80 % of its disk budget"
	case level == 100 && ofDisk:
		msg = fmt.Sprintf("the disk holding the receipt ledger is full (%d bytes free): new receipts are refused; free space on it (old previews, logs)", avail)
	case level == 100:
		msg = fmt.Sprintf("receipt ledger uses %d of %d bytes: new receipts are refused; get the box online so the backlog syncs, or raise receipts.disk_budget_mb", used, budget)
	case ofDisk:
		msg = fmt.Sprintf("the disk holding the receipt ledger is nearly full (%d bytes free); free space on it", avail)
	default:
		msg = fmt.Sprintf("receipt ledger uses %d %% of its %d-byte disk budget; get the box online so the backlog syncs and can be pruned", pct, budget)
	}
	l.log.Warn("disk budget", "level", level, "used", used, "budget", budget, "of_disk", ofDisk)
	if l.o.Bus != nil {
		b, _ := json.Marshal(map[string]any{"kind": "disk_budget", "level": level, "used": used, "budget": budget, "disk": ofDisk, "message": msg})
		l.o.Bus.Publish(topic.ReceiptsAlarm, b)
	}
	if l.o.OnAlarm != nil {
		l.o.OnAlarm(level, msg)
	}
}

func (l *Ledger) freeSpace() (int64, error) {
	if l.o.FreeSpace != nil {
		return l.o.FreeSpace()
	}
	return sqlitex.FreeBytes(filepath.Dir(l.o.Path))
}

// RefreshUsage measures again now: the disk may have been freed while
// every sale was refused (and so nothing was committed to trigger it).
func (l *Ledger) RefreshUsage(ctx context.Context) { l.refreshUsage(ctx) }

// refused is the error for a sale refused by the alarm.
func (l *Ledger) refused() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ofDisk {
		return ErrNoSpace
	}
	return ErrDiskFull
}

func (l *Ledger) alarmLevel() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.alarm
}

// Usage is the measured size and the budget (0: none).
func (l *Ledger) Usage() (used, budget int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.usage, l.budget
}

// StatusOf maps an append error to an HTTP status.
func StatusOf(err error) int {
	var ie *InputError
	switch {
	case errors.As(err, &ie):
		return ie.Code
	case errors.Is(err, ErrDiskFull), errors.Is(err, ErrNoSpace):
		return http.StatusInsufficientStorage
	case errors.Is(err, ErrClosed):
		return http.StatusServiceUnavailable
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// readDomain is the signing domain a ledger recorded at its creation;
// ledgers made before domains were recorded are real.
func readDomain(q interface {
	QueryRow(q string, args ...any) *sql.Row
}) (Domain, error) {
	var name string
	err := q.QueryRow(`SELECT v FROM meta WHERE k='domain'`).Scan(&name)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return Real, nil
	case err != nil:
		return Domain{}, fmt.Errorf("receipts: %w", err)
	}
	for _, d := range []Domain{Real, Rehearsal} {
		if d.Name == name {
			return d, nil
		}
	}
	return Domain{}, fmt.Errorf("receipts: the ledger names signing domain %q, which this agent does not know", name)
}
