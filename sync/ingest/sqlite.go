package ingest

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"errors"
	"fmt"
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
	// The fleet report reads a sale's fields from the stored bytes with
	// json_extract: a demo's store stays one insert per record.
	2: `
ALTER TABLE boxes ADD COLUMN first_key TEXT NOT NULL DEFAULT '';
ALTER TABLE boxes ADD COLUMN last_contact_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE boxes ADD COLUMN box_head INTEGER NOT NULL DEFAULT 0;
CREATE TABLE enrollments (
	box TEXT PRIMARY KEY, venue TEXT NOT NULL, first_key TEXT NOT NULL,
	token_hash TEXT NOT NULL, enrolled_ms INTEGER NOT NULL);
CREATE INDEX alarms_box ON alarms(box, kind);`,
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

// salesCTE is the stored sales stamped at or after ?, with their bytes
// as text. SQLite's date functions read the records' RFC 3339 times,
// any offset, as UTC.
const salesCTE = `WITH s AS (SELECT r.box AS box, CAST(r.body AS TEXT) AS body FROM records r
	WHERE json_extract(CAST(r.body AS TEXT), '$.type') = 'sale'
	AND julianday(json_extract(CAST(r.body AS TEXT), '$.ts')) >= julianday(?)) `

func (s *sqliteStore) Sales(ctx context.Context, since time.Time) (*FleetReport, error) {
	rep := &FleetReport{Since: since}
	from := "0001-01-01T00:00:00Z"
	if !since.IsZero() {
		from = since.UTC().Format(time.RFC3339Nano)
	}
	scan := func(q string, row func(*sql.Rows) error) error {
		rows, err := s.db.QueryContext(ctx, salesCTE+q, from)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			if err := row(rows); err != nil {
				return err
			}
		}
		return rows.Err()
	}
	err := scan(`SELECT s.box, coalesce(e.venue, ''), coalesce(json_extract(s.body, '$.currency'), '') AS cur, count(*),
		sum(coalesce(json_extract(s.body, '$.total'), 0)) FROM s LEFT JOIN enrollments e ON e.box = s.box GROUP BY s.box, cur ORDER BY s.box, cur`,
		func(rows *sql.Rows) error {
			var b BoxTotal
			if err := rows.Scan(&b.Box, &b.Venue, &b.Currency, &b.Count, &b.Total); err != nil {
				return err
			}
			rep.ByBox = append(rep.ByBox, b)
			rep.Count += b.Count
			rep.Total += b.Total
			return nil
		})
	if err != nil {
		return nil, err
	}
	err = scan(`SELECT json_extract(j.value, '$.sku') AS sku, sum(json_extract(j.value, '$.qty')),
		sum(json_extract(j.value, '$.qty') * json_extract(j.value, '$.price')) FROM s, json_each(s.body, '$.items') j GROUP BY sku ORDER BY sku`,
		func(rows *sql.Rows) error {
			var t receipts.SKUTotal
			if err := rows.Scan(&t.SKU, &t.Qty, &t.Total); err != nil {
				return err
			}
			rep.BySKU = append(rep.BySKU, t)
			return nil
		})
	if err != nil {
		return nil, err
	}
	err = scan(`SELECT coalesce(json_extract(body, '$.pay'), '') AS pay, count(*), sum(coalesce(json_extract(body, '$.total'), 0)) FROM s GROUP BY pay ORDER BY pay`,
		func(rows *sql.Rows) error {
			var t receipts.PayTotal
			if err := rows.Scan(&t.Pay, &t.Count, &t.Total); err != nil {
				return err
			}
			rep.ByPay = append(rep.ByPay, t)
			return nil
		})
	if err != nil {
		return nil, err
	}
	err = scan(`SELECT strftime('%Y-%m-%dT%H', json_extract(body, '$.ts')) AS hour, count(*), sum(coalesce(json_extract(body, '$.total'), 0)) FROM s GROUP BY hour ORDER BY hour`,
		func(rows *sql.Rows) error {
			var h string
			var t HourTotal
			if err := rows.Scan(&h, &t.Count, &t.Total); err != nil {
				return err
			}
			var err error
			if t.Hour, err = time.Parse("2006-01-02T15", h); err != nil {
				return fmt.Errorf("stored ts hour %q: %w", h, err)
			}
			rep.ByHour = append(rep.ByHour, t)
			return nil
		})
	if err != nil {
		return nil, err
	}
	return rep, nil
}

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
	ins, err := t.tx.PrepareContext(ctx, `INSERT INTO records(box, seq, hash, body, sig, received_ms) VALUES (?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer ins.Close()
	for _, r := range rows {
		if _, err := ins.ExecContext(ctx, t.box, r.Seq, r.Hash, r.Body, r.Sig, r.ReceivedMS); err != nil {
			return fmt.Errorf("seq %d: %w", r.Seq, err)
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
