package ingest

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"fieldkit/sync/receipts"
)

// pgMigrations are applied in order at start, each in the one
// transaction that holds migrationLock, and recorded in
// schema_migrations: two instances starting at once take turns, and the
// second finds nothing left to do. PostgreSQL's DDL is transactional, so
// a migration that fails leaves nothing half done. Never edit one that
// shipped; append.
var pgMigrations = []string{
	1: `
CREATE TABLE enrollments (
	box text PRIMARY KEY,
	venue text NOT NULL DEFAULT '',
	first_key text NOT NULL DEFAULT '',
	token_hash text NOT NULL,
	enrolled_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE boxes (
	box text PRIMARY KEY,
	seq bigint NOT NULL,
	head text NOT NULL,
	turnover bigint NOT NULL,
	sign_kid text NOT NULL,
	keys text NOT NULL,
	last_ts text NOT NULL,
	checkpoint text NOT NULL DEFAULT '',
	first_key text NOT NULL DEFAULT '',
	last_contact timestamptz,
	box_head bigint NOT NULL DEFAULT 0);
CREATE TABLE records (
	box text NOT NULL,
	seq bigint NOT NULL,
	hash text NOT NULL,
	body bytea NOT NULL,
	sig text NOT NULL,
	received_at timestamptz NOT NULL,
	type text NOT NULL,
	ts timestamptz NOT NULL,
	pay text NOT NULL,
	total bigint NOT NULL,
	currency text NOT NULL,
	-- A sale's lines, for the report: one row per record keeps the
	-- insert to one COPY of one table.
	skus text[] NOT NULL,
	qtys bigint[] NOT NULL,
	amounts bigint[] NOT NULL,
	PRIMARY KEY (box, seq));
CREATE TABLE alarms (
	id bigserial PRIMARY KEY,
	at timestamptz NOT NULL,
	box text NOT NULL,
	kind text NOT NULL,
	msg text NOT NULL);
CREATE INDEX alarms_box ON alarms (box, kind);`,
}

// Advisory lock keys. The migration lock uses the one-bigint key space,
// box locks the two-int one (class boxLockClass, hashtext(box)); the two
// spaces never overlap. Two boxes whose ids hash alike only take turns.
const (
	migrationLock = 0x666b696e67657374 // "fkingest"
	boxLockClass  = 0x666b6278         // "fkbx"
)

type pgStore struct{ pool *pgxpool.Pool }

// OpenPostgres connects to url (a libpq URL or key=value string) and
// brings the schema up to date. Every session runs with
// synchronous_commit=on whatever the server's default, so a batch is
// answered 2xx only once it is on the server's disk (and its synchronous
// standbys', where configured).
func OpenPostgres(ctx context.Context, url string) (Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("ingest: postgres url: %w", err)
	}
	cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "on"
	cfg.ConnConfig.RuntimeParams["timezone"] = "UTC"
	cfg.ConnConfig.RuntimeParams["application_name"] = "fieldkit-ingest"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("ingest: postgres: %w", err)
	}
	if err := migratePG(ctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("ingest: postgres: %w", err)
	}
	var sc string
	if err := pool.QueryRow(ctx, `SHOW synchronous_commit`).Scan(&sc); err != nil || sc != "on" {
		pool.Close()
		return nil, fmt.Errorf("ingest: postgres: synchronous_commit is %q, want on (%v)", sc, err)
	}
	return &pgStore{pool: pool}, nil
}

func migratePG(ctx context.Context, pool *pgxpool.Pool) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrationLock)); err != nil {
		return fmt.Errorf("migration lock: %w", err)
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return err
	}
	var v int
	if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return err
	}
	if v >= len(pgMigrations) {
		// A newer instance migrated further: this one may not understand
		// the schema.
		return fmt.Errorf("the database's schema is version %d; this ingest knows up to %d", v, len(pgMigrations)-1)
	}
	for i := v + 1; i < len(pgMigrations); i++ {
		if _, err := tx.Exec(ctx, pgMigrations[i]); err != nil {
			return fmt.Errorf("migration %d: %w", i, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations(version) VALUES ($1)`, i); err != nil {
			return fmt.Errorf("migration %d: %w", i, err)
		}
	}
	return tx.Commit(ctx)
}

// SchemaVersion is the newest schema migration this ingest applies.
func SchemaVersion() int { return len(pgMigrations) - 1 }

func (s *pgStore) Backend() string { return "postgresql" }
func (s *pgStore) Close() error    { s.pool.Close(); return nil }

func (s *pgStore) Begin(ctx context.Context, box string) (Tx, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	// The box's lock, held until the transaction ends: another instance
	// with a batch of the same box waits here, then reads the state this
	// one committed. A crashed instance's session ends and frees it.
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, int32(boxLockClass), box); err != nil {
		tx.Rollback(ctx)
		return nil, fmt.Errorf("lock box %q: %w", box, err)
	}
	return &pgTx{tx: tx, box: box}, nil
}

func (s *pgStore) Enrollment(ctx context.Context, box string) (*Enrollment, error) {
	return pgEnrollment(ctx, s.pool, box)
}

type pgQuerier interface {
	QueryRow(ctx context.Context, q string, args ...any) pgx.Row
}

func pgEnrollment(ctx context.Context, q pgQuerier, box string) (*Enrollment, error) {
	var e Enrollment
	var key string
	err := q.QueryRow(ctx, `SELECT box, venue, first_key, token_hash FROM enrollments WHERE box=$1`, box).Scan(&e.Box, &e.Venue, &key, &e.TokenHash)
	if errors.Is(err, pgx.ErrNoRows) {
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

func (s *pgStore) Enroll(ctx context.Context, e Enrollment) error {
	t, err := s.Begin(ctx, e.Box)
	if err != nil {
		return err
	}
	tx := t.(*pgTx).tx
	defer tx.Rollback(ctx)
	var stored string
	err = tx.QueryRow(ctx, `SELECT first_key FROM boxes WHERE box=$1`, e.Box).Scan(&stored)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return err
	}
	if err := checkEnrollKey(e, stored); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO enrollments(box, venue, first_key, token_hash) VALUES ($1, $2, $3, $4)
		ON CONFLICT (box) DO UPDATE SET venue=excluded.venue, first_key=excluded.first_key, token_hash=excluded.token_hash, enrolled_at=now()`,
		e.Box, e.Venue, encodeKey(e.FirstKey), e.TokenHash); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

func (s *pgStore) Boxes(ctx context.Context) ([]BoxStatus, error) {
	rows, err := s.pool.Query(ctx, `
	SELECT b.box, coalesce(e.venue, ''), e.box IS NOT NULL, coalesce(s.seq, 0), coalesce(s.turnover, 0), s.last_contact, coalesce(s.box_head, 0),
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
		var contact *time.Time
		var seq, head int64
		if err := rows.Scan(&b.Box, &b.Venue, &b.Enrolled, &seq, &b.Turnover, &contact, &head, &b.Forks, &b.Invalid); err != nil {
			return nil, err
		}
		b.AckedThrough, b.BoxHead = uint64(seq), uint64(head)
		if contact != nil {
			b.LastContact = contact.UTC()
		}
		b.Backlog = backlog(b.BoxHead, b.AckedThrough)
		out = append(out, b)
	}
	return out, rows.Err()
}

func (s *pgStore) Alarms(ctx context.Context, limit int) ([]Alarm, error) {
	rows, err := s.pool.Query(ctx, `SELECT at, box, kind, msg FROM alarms ORDER BY at DESC, id DESC LIMIT $1`, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Alarm
	for rows.Next() {
		var a Alarm
		if err := rows.Scan(&a.At, &a.Box, &a.Kind, &a.Msg); err != nil {
			return nil, err
		}
		a.At = a.At.UTC()
		out = append(out, a)
	}
	return out, rows.Err()
}

func (s *pgStore) Records(ctx context.Context, box string, after uint64, fn func(receipts.Signed) error) error {
	rows, err := s.pool.Query(ctx, `SELECT seq, body, sig, hash FROM records WHERE box=$1 AND seq>$2 ORDER BY seq`, box, int64(after))
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var sg receipts.Signed
		var seq int64
		var body []byte
		if err := rows.Scan(&seq, &body, &sg.Sig, &sg.Hash); err != nil {
			return err
		}
		sg.Seq, sg.Record = uint64(seq), string(body)
		if err := fn(sg); err != nil {
			return err
		}
	}
	return rows.Err()
}

func (s *pgStore) Sales(ctx context.Context, since time.Time) (*FleetReport, error) {
	rep := &FleetReport{Since: since}
	rows, err := s.pool.Query(ctx, `SELECT r.box, coalesce(e.venue, ''), r.currency, count(*), sum(r.total)::bigint FROM records r
		LEFT JOIN enrollments e ON e.box=r.box WHERE r.type='sale' AND r.ts >= $1 GROUP BY r.box, e.venue, r.currency ORDER BY r.box, r.currency`, since)
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
	rows, err = s.pool.Query(ctx, `SELECT i.sku, sum(i.qty)::bigint, sum(i.amount)::bigint FROM records r, unnest(r.skus, r.qtys, r.amounts) AS i(sku, qty, amount)
		WHERE r.type='sale' AND r.ts >= $1 GROUP BY i.sku ORDER BY i.sku COLLATE "C"`, since)
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
	rows, err = s.pool.Query(ctx, `SELECT pay, count(*), sum(total)::bigint FROM records WHERE type='sale' AND ts >= $1 GROUP BY pay ORDER BY pay COLLATE "C"`, since)
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
	rows, err = s.pool.Query(ctx, `SELECT date_trunc('hour', ts), count(*), sum(total)::bigint FROM records WHERE type='sale' AND ts >= $1 GROUP BY 1 ORDER BY 1`, since)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var t HourTotal
		if err := rows.Scan(&t.Hour, &t.Count, &t.Total); err != nil {
			return nil, err
		}
		t.Hour = t.Hour.UTC()
		rep.ByHour = append(rep.ByHour, t)
	}
	return rep, rows.Err()
}

type pgTx struct {
	tx  pgx.Tx
	box string
}

func (t *pgTx) State(ctx context.Context) (*BoxState, error) {
	st := &BoxState{Box: t.box}
	var keys, lastTS, first string
	var contact *time.Time
	var seq, head int64
	err := t.tx.QueryRow(ctx, `SELECT seq, head, turnover, sign_kid, keys, last_ts, checkpoint, first_key, last_contact, box_head FROM boxes WHERE box=$1`, t.box).
		Scan(&seq, &st.Head, &st.Turnover, &st.SignKid, &keys, &lastTS, &st.Checkpoint, &first, &contact, &head)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	st.Seq, st.BoxHead = uint64(seq), uint64(head)
	if st.Keys, err = decodeKeys(keys); err != nil {
		return nil, err
	}
	if st.FirstKey, err = decodeKey(first); err != nil {
		return nil, err
	}
	st.LastTS, _ = time.Parse(time.RFC3339Nano, lastTS)
	if contact != nil {
		st.LastContact = *contact
	}
	return st, nil
}

func (t *pgTx) Hashes(ctx context.Context, from, to uint64) (map[uint64]string, error) {
	rows, err := t.tx.Query(ctx, `SELECT seq, hash FROM records WHERE box=$1 AND seq BETWEEN $2 AND $3`, t.box, int64(from), int64(to))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[uint64]string{}
	for rows.Next() {
		var seq int64
		var h string
		if err := rows.Scan(&seq, &h); err != nil {
			return nil, err
		}
		out[uint64(seq)] = h
	}
	return out, rows.Err()
}

// Insert copies the rows in with COPY: one round trip for a batch. The
// primary key (box, seq) still refuses a record stored twice, should a
// writer ever not hold the box's lock.
func (t *pgTx) Insert(ctx context.Context, rows []Row) error {
	recs := make([][]any, len(rows))
	for i, r := range rows {
		skus := make([]string, len(r.Items))
		qtys := make([]int64, len(r.Items))
		amounts := make([]int64, len(r.Items))
		for j, it := range r.Items {
			skus[j], qtys[j], amounts[j] = it.SKU, it.Qty, it.Qty*it.Price
		}
		recs[i] = []any{t.box, int64(r.Seq), r.Hash, r.Body, r.Sig, time.UnixMilli(r.ReceivedMS), r.Type, r.TS, r.Pay, r.Total, r.Currency, skus, qtys, amounts}
	}
	if _, err := t.tx.CopyFrom(ctx, pgx.Identifier{"records"},
		[]string{"box", "seq", "hash", "body", "sig", "received_at", "type", "ts", "pay", "total", "currency", "skus", "qtys", "amounts"},
		pgx.CopyFromRows(recs)); err != nil {
		return fmt.Errorf("store records: %w", err)
	}
	return nil
}

func (t *pgTx) Save(ctx context.Context, st *BoxState) error {
	var contact *time.Time
	if !st.LastContact.IsZero() {
		contact = &st.LastContact
	}
	_, err := t.tx.Exec(ctx, `INSERT INTO boxes(box, seq, head, turnover, sign_kid, keys, last_ts, checkpoint, first_key, last_contact, box_head)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
		ON CONFLICT (box) DO UPDATE SET seq=excluded.seq, head=excluded.head, turnover=excluded.turnover, sign_kid=excluded.sign_kid,
		keys=excluded.keys, last_ts=excluded.last_ts, checkpoint=excluded.checkpoint, first_key=excluded.first_key,
		last_contact=excluded.last_contact, box_head=excluded.box_head`,
		st.Box, int64(st.Seq), st.Head, st.Turnover, st.SignKid, encodeKeys(st.Keys), st.LastTS.Format(time.RFC3339Nano), st.Checkpoint,
		encodeKey(st.FirstKey), contact, int64(st.BoxHead))
	return err
}

func (t *pgTx) PinKey(ctx context.Context, pub ed25519.PublicKey) error {
	_, err := t.tx.Exec(ctx, `UPDATE enrollments SET first_key=$1 WHERE box=$2 AND first_key=''`, encodeKey(pub), t.box)
	return err
}

func (t *pgTx) Alarm(ctx context.Context, a Alarm) error {
	_, err := t.tx.Exec(ctx, `INSERT INTO alarms(at, box, kind, msg) VALUES ($1, $2, $3, $4)`, a.At, a.Box, a.Kind, a.Msg)
	return err
}

func (t *pgTx) Commit(ctx context.Context) error { return t.tx.Commit(ctx) }

func (t *pgTx) Rollback() error {
	// Rollback after Commit is a no-op in pgx; a rollback that cannot
	// reach the server leaves the session to end, which rolls back too.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := t.tx.Rollback(ctx); err != nil && !errors.Is(err, pgx.ErrTxClosed) {
		return err
	}
	return nil
}
