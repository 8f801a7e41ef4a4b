package ingest

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"fieldkit/internal/sqlitex"
	"fieldkit/sync/receipts"
)

// sqliteMigrations are applied in order; PRAGMA user_version counts the
// ones done. Version 1 is the schema of the first ingest, so its files
// open and are brought forward.
var sqliteMigrations = []string{
	1: `
CREATE TABLE IF NOT EXISTS boxes (
	box TEXT PRIMARY KEY, seq INTEGER NOT NULL, head TEXT NOT NULL,
	turnover INTEGER NOT NULL, sign_kid TEXT NOT NULL, keys TEXT NOT NULL,
	last_ts TEXT NOT NULL, checkpoint TEXT);
CREATE TABLE IF NOT EXISTS records (
	box TEXT NOT NULL, seq INTEGER NOT NULL, hash TEXT NOT NULL,
	body BLOB NOT NULL, sig TEXT NOT NULL, received_ms INTEGER NOT NULL,
	PRIMARY KEY (box, seq));
CREATE TABLE IF NOT EXISTS alarms (
	at_ms INTEGER NOT NULL, box TEXT NOT NULL, kind TEXT NOT NULL, msg TEXT NOT NULL);`,
	2: `
ALTER TABLE boxes ADD COLUMN first_key TEXT NOT NULL DEFAULT '';
ALTER TABLE boxes ADD COLUMN last_contact_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE boxes ADD COLUMN box_head INTEGER NOT NULL DEFAULT 0;
ALTER TABLE records ADD COLUMN type TEXT NOT NULL DEFAULT '';
ALTER TABLE records ADD COLUMN ts TEXT NOT NULL DEFAULT '';
ALTER TABLE records ADD COLUMN pay TEXT NOT NULL DEFAULT '';
ALTER TABLE records ADD COLUMN total INTEGER NOT NULL DEFAULT 0;
ALTER TABLE records ADD COLUMN currency TEXT NOT NULL DEFAULT '';
CREATE TABLE sale_items (
	box TEXT NOT NULL, seq INTEGER NOT NULL, line INTEGER NOT NULL,
	sku TEXT NOT NULL, qty INTEGER NOT NULL, amount INTEGER NOT NULL,
	PRIMARY KEY (box, seq, line));
CREATE TABLE enrollments (
	box TEXT PRIMARY KEY, venue TEXT NOT NULL, first_key TEXT NOT NULL,
	token_hash TEXT NOT NULL, enrolled_ms INTEGER NOT NULL);
CREATE INDEX alarms_box ON alarms(box, kind);
-- Records stored before the report columns existed: take them from the
-- stored bytes (they verified on the way in).
UPDATE records SET type = coalesce(json_extract(CAST(body AS TEXT), '$.type'), ''),
	ts = coalesce(json_extract(CAST(body AS TEXT), '$.ts'), ''),
	pay = coalesce(json_extract(CAST(body AS TEXT), '$.pay'), ''),
	total = coalesce(json_extract(CAST(body AS TEXT), '$.total'), 0),
	currency = coalesce(json_extract(CAST(body AS TEXT), '$.currency'), '');
INSERT INTO sale_items(box, seq, line, sku, qty, amount)
	SELECT r.box, r.seq, j.key, json_extract(j.value, '$.sku'), json_extract(j.value, '$.qty'),
		json_extract(j.value, '$.qty') * json_extract(j.value, '$.price')
	FROM records r, json_each(CAST(r.body AS TEXT), '$.items') j WHERE r.type = 'sale';`,
}

type sqliteStore struct{ db *sql.DB }

// OpenSQLite opens (creating and migrating) an ingest store in one SQLite
// file, committed with synchronous=FULL. Writers take the file's write
// lock at the start of a batch (BEGIN IMMEDIATE), so several processes
// may share the file, one batch at a time.
func OpenSQLite(path string) (Store, error) {
	db, err := sqlitex.Open(path, sqlitex.Options{Sync: sqlitex.Full})
	if err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	if err := migrateSQLite(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("ingest: %s: %w", path, err)
	}
	return &sqliteStore{db: db}, nil
}

func migrateSQLite(db *sql.DB) error {
	tx, err := db.Begin() // immediate: one migrating process at a time
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var v int
	if err := tx.QueryRow(`PRAGMA user_version`).Scan(&v); err != nil {
		return err
	}
	if v >= len(sqliteMigrations) {
		return nil
	}
	// A file of the first ingest has the tables but no version:
	// migration 1 creates only what is missing.
	for i := max(v+1, 1); i < len(sqliteMigrations); i++ {
		if _, err := tx.Exec(sqliteMigrations[i]); err != nil {
			return fmt.Errorf("migration %d: %w", i, err)
		}
	}
	if _, err := tx.Exec(`PRAGMA user_version = ` + strconv.Itoa(len(sqliteMigrations)-1)); err != nil {
		return err
	}
	return tx.Commit()
}

func (s *sqliteStore) Backend() string { return "sqlite" }
func (s *sqliteStore) Close() error    { return s.db.Close() }

func (s *sqliteStore) Begin(ctx context.Context, box string) (Tx, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	return &sqliteTx{tx: tx, box: box}, nil
}

func (s *sqliteStore) Enrollment(ctx context.Context, box string) (*Enrollment, error) {
	return sqliteEnrollment(ctx, s.db, box)
}

type querier interface {
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

func sqliteEnrollment(ctx context.Context, q querier, box string) (*Enrollment, error) {
	var e Enrollment
	var key string
	err := q.QueryRowContext(ctx, `SELECT box, venue, first_key, token_hash FROM enrollments WHERE box=?`, box).Scan(&e.Box, &e.Venue, &key, &e.TokenHash)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if e.FirstKey, err = decodeKey(key); err != nil {
		return nil, err
	}
	return &e, nil
}

func (s *sqliteStore) Enroll(ctx context.Context, e Enrollment) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var stored string
	err = tx.QueryRowContext(ctx, `SELECT first_key FROM boxes WHERE box=?`, e.Box).Scan(&stored)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	if err := checkEnrollKey(e, stored); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO enrollments(box, venue, first_key, token_hash, enrolled_ms) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT(box) DO UPDATE SET venue=excluded.venue, first_key=excluded.first_key, token_hash=excluded.token_hash, enrolled_ms=excluded.enrolled_ms`,
		e.Box, e.Venue, encodeKey(e.FirstKey), e.TokenHash, time.Now().UnixMilli()); err != nil {
		return err
	}
	return tx.Commit()
}

// checkEnrollKey refuses to enroll a box with a key other than the one
// its stored chain started with: that would re-anchor a chain.
func checkEnrollKey(e Enrollment, stored string) error {
	if stored != "" && e.FirstKey != nil && stored != encodeKey(e.FirstKey) {
		return fmt.Errorf("ingest: box %q already has a chain started by another key (%s); it cannot be re-enrolled with key %s",
			e.Box, keyIDOf(stored), receipts.KeyID(e.FirstKey))
	}
	return nil
}

func keyIDOf(b64 string) string {
	k, err := decodeKey(b64)
	if err != nil || k == nil {
		return "?"
	}
	return receipts.KeyID(k)
}

func (s *sqliteStore) Boxes(ctx context.Context) ([]BoxStatus, error) {
	rows, err := s.db.QueryContext(ctx, `
	SELECT b.box, coalesce(e.venue, ''), e.box IS NOT NULL, coalesce(s.seq, 0), coalesce(s.turnover, 0), coalesce(s.last_contact_ms, 0), coalesce(s.box_head, 0),
		(SELECT count(*) FROM alarms a WHERE a.box=b.box AND a.kind='fork'),
		(SELECT count(*) FROM alarms a WHERE a.box=b.box AND a.kind='invalid')
	FROM (SELECT box FROM boxes UNION SELECT box FROM enrollments) b
	LEFT JOIN boxes s ON s.box=b.box LEFT JOIN enrollments e ON e.box=b.box ORDER BY b.box`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []BoxStatus
	for rows.Next() {
		var b BoxStatus
		var contact int64
		if err := rows.Scan(&b.Box, &b.Venue, &b.Enrolled, &b.AckedThrough, &b.Turnover, &contact, &b.BoxHead, &b.Forks, &b.Invalid); err != nil {
			return nil, err
		}
		if contact > 0 {
			b.LastContact = time.UnixMilli(contact).UTC()
		}
		b.Backlog = backlog(b.BoxHead, b.AckedThrough)
		out = append(out, b)
	}
	return out, rows.Err()
}

func backlog(head, acked uint64) uint64 {
	if head > acked {
		return head - acked
	}
	return 0
}

func (s *sqliteStore) Alarms(ctx context.Context, limit int) ([]Alarm, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT at_ms, box, kind, msg FROM alarms ORDER BY at_ms DESC, rowid DESC LIMIT ?`, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Alarm
	for rows.Next() {
		var a Alarm
		var ms int64
		if err := rows.Scan(&ms, &a.Box, &a.Kind, &a.Msg); err != nil {
			return nil, err
		}
		a.At = time.UnixMilli(ms).UTC()
		out = append(out, a)
	}
	return out, rows.Err()
}

func (s *sqliteStore) Records(ctx context.Context, box string, after uint64, fn func(receipts.Signed) error) error {
	rows, err := s.db.QueryContext(ctx, `SELECT seq, body, sig, hash FROM records WHERE box=? AND seq>? ORDER BY seq`, box, after)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var sg receipts.Signed
		var body []byte
		if err := rows.Scan(&sg.Seq, &body, &sg.Sig, &sg.Hash); err != nil {
			return err
		}
		sg.Record = string(body)
		if err := fn(sg); err != nil {
			return err
		}
	}
	return rows.Err()
}

func (s *sqliteStore) Sales(ctx context.Context, since time.Time) (*FleetReport, error) {
	rep := &FleetReport{Since: since}
	sinceText := ""
	if !since.IsZero() {
		sinceText = since.UTC().Format(tsLayout)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT r.box, coalesce(e.venue, ''), r.currency, count(*), sum(r.total) FROM records r
		LEFT JOIN enrollments e ON e.box=r.box WHERE r.type='sale' AND r.ts >= ? GROUP BY r.box, r.currency ORDER BY r.box, r.currency`, sinceText)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var b BoxTotal
		if err := rows.Scan(&b.Box, &b.Venue, &b.Currency, &b.Count, &b.Total); err != nil {
			rows.Close()
			return nil, err
		}
		rep.ByBox = append(rep.ByBox, b)
		rep.Count += b.Count
		rep.Total += b.Total
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = s.db.QueryContext(ctx, `SELECT i.sku, sum(i.qty), sum(i.amount) FROM sale_items i JOIN records r ON r.box=i.box AND r.seq=i.seq
		WHERE r.ts >= ? GROUP BY i.sku ORDER BY i.sku`, sinceText)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var t receipts.SKUTotal
		if err := rows.Scan(&t.SKU, &t.Qty, &t.Total); err != nil {
			rows.Close()
			return nil, err
		}
		rep.BySKU = append(rep.BySKU, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = s.db.QueryContext(ctx, `SELECT pay, count(*), sum(total) FROM records WHERE type='sale' AND ts >= ? GROUP BY pay ORDER BY pay`, sinceText)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var t receipts.PayTotal
		if err := rows.Scan(&t.Pay, &t.Count, &t.Total); err != nil {
			rows.Close()
			return nil, err
		}
		rep.ByPay = append(rep.ByPay, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = s.db.QueryContext(ctx, `SELECT substr(ts, 1, 13), count(*), sum(total) FROM records WHERE type='sale' AND ts >= ? GROUP BY 1 ORDER BY 1`, sinceText)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var h string
		var t HourTotal
		if err := rows.Scan(&h, &t.Count, &t.Total); err != nil {
			return nil, err
		}
		if t.Hour, err = time.Parse("2006-01-02T15", h); err != nil {
			return nil, fmt.Errorf("stored ts hour %q: %w", h, err)
		}
		rep.ByHour = append(rep.ByHour, t)
	}
	sort.Slice(rep.ByHour, func(i, j int) bool { return rep.ByHour[i].Hour.Before(rep.ByHour[j].Hour) })
	return rep, rows.Err()
}

// tsLayout stores record times in UTC with a fixed width, so that text
// order is time order and the first 13 bytes name the hour.
const tsLayout = "2006-01-02T15:04:05.000000000Z"

type sqliteTx struct {
	tx  *sql.Tx
	box string
}

func (t *sqliteTx) State(ctx context.Context) (*BoxState, error) {
	st := &BoxState{Box: t.box}
	var keys, lastTS, first string
	var cp sql.NullString
	var contact int64
	err := t.tx.QueryRowContext(ctx, `SELECT seq, head, turnover, sign_kid, keys, last_ts, checkpoint, first_key, last_contact_ms, box_head FROM boxes WHERE box=?`, t.box).
		Scan(&st.Seq, &st.Head, &st.Turnover, &st.SignKid, &keys, &lastTS, &cp, &first, &contact, &st.BoxHead)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if st.Keys, err = decodeKeys(keys); err != nil {
		return nil, err
	}
	if st.FirstKey, err = decodeKey(first); err != nil {
		return nil, err
	}
	st.LastTS, _ = time.Parse(time.RFC3339Nano, lastTS)
	st.Checkpoint = cp.String
	if contact > 0 {
		st.LastContact = time.UnixMilli(contact)
	}
	return st, nil
}

func (t *sqliteTx) Hashes(ctx context.Context, from, to uint64) (map[uint64]string, error) {
	rows, err := t.tx.QueryContext(ctx, `SELECT seq, hash FROM records WHERE box=? AND seq BETWEEN ? AND ?`, t.box, from, to)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[uint64]string{}
	for rows.Next() {
		var seq uint64
		var h string
		if err := rows.Scan(&seq, &h); err != nil {
			return nil, err
		}
		out[seq] = h
	}
	return out, rows.Err()
}

func (t *sqliteTx) Insert(ctx context.Context, rows []Row) error {
	ins, err := t.tx.PrepareContext(ctx, `INSERT INTO records(box, seq, hash, body, sig, received_ms, type, ts, pay, total, currency) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer ins.Close()
	item, err := t.tx.PrepareContext(ctx, `INSERT INTO sale_items(box, seq, line, sku, qty, amount) VALUES (?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer item.Close()
	for _, r := range rows {
		if _, err := ins.ExecContext(ctx, t.box, r.Seq, r.Hash, r.Body, r.Sig, r.ReceivedMS, r.Type, r.TS.UTC().Format(tsLayout), r.Pay, r.Total, r.Currency); err != nil {
			return fmt.Errorf("seq %d: %w", r.Seq, err)
		}
		for i, it := range r.Items {
			if _, err := item.ExecContext(ctx, t.box, r.Seq, i, it.SKU, it.Qty, it.Qty*it.Price); err != nil {
				return fmt.Errorf("seq %d item %d: %w", r.Seq, i, err)
			}
		}
	}
	return nil
}

func (t *sqliteTx) Save(ctx context.Context, st *BoxState) error {
	_, err := t.tx.ExecContext(ctx, `INSERT INTO boxes(box, seq, head, turnover, sign_kid, keys, last_ts, checkpoint, first_key, last_contact_ms, box_head)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT(box) DO UPDATE SET seq=excluded.seq, head=excluded.head, turnover=excluded.turnover, sign_kid=excluded.sign_kid,
		keys=excluded.keys, last_ts=excluded.last_ts, checkpoint=excluded.checkpoint, first_key=excluded.first_key,
		last_contact_ms=excluded.last_contact_ms, box_head=excluded.box_head`,
		st.Box, st.Seq, st.Head, st.Turnover, st.SignKid, encodeKeys(st.Keys), st.LastTS.Format(time.RFC3339Nano), st.Checkpoint,
		encodeKey(st.FirstKey), st.LastContact.UnixMilli(), st.BoxHead)
	return err
}

func (t *sqliteTx) PinKey(ctx context.Context, pub ed25519.PublicKey) error {
	_, err := t.tx.ExecContext(ctx, `UPDATE enrollments SET first_key=? WHERE box=? AND first_key=''`, encodeKey(pub), t.box)
	return err
}

func (t *sqliteTx) Alarm(ctx context.Context, a Alarm) error {
	_, err := t.tx.ExecContext(ctx, `INSERT INTO alarms(at_ms, box, kind, msg) VALUES (?, ?, ?, ?)`, a.At.UnixMilli(), a.Box, a.Kind, a.Msg)
	return err
}

func (t *sqliteTx) Commit(context.Context) error { return t.tx.Commit() }

func (t *sqliteTx) Rollback() error {
	if err := t.tx.Rollback(); err != nil && !errors.Is(err, sql.ErrTxDone) {
		return err
	}
	return nil
}
