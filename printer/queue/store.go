package queue

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"fieldkit/internal/clock"
	"fieldkit/internal/sqlitex"
)

// State of a job.
type State string

// Job states.
const (
	Queued    State = "queued"
	Printing  State = "printing"
	Done      State = "done"
	Failed    State = "failed"
	Parked    State = "parked"
	Uncertain State = "uncertain"
	Cancelled State = "cancelled"
)

// Job is one label to print on one printer.
type Job struct {
	ID      string          `json:"id"`
	Printer string          `json:"printer"`
	Label   json.RawMessage `json:"label"`
	State   State           `json:"state"`
	// Attempts counts the times the worker began sending the job.
	Attempts int    `json:"attempts"`
	Error    string `json:"error,omitempty"`
	// ReprintOf names the job this one reprints.
	ReprintOf string `json:"reprint_of,omitempty"`
	// Order and Buyer are what the pickup desk looks for in the queue
	// (from a pickup label's data). A discreet order keeps no buyer name.
	Order    string    `json:"order,omitempty"`
	Buyer    string    `json:"buyer,omitempty"`
	Discreet bool      `json:"discreet,omitempty"`
	Created  time.Time `json:"created"`
	Updated  time.Time `json:"updated"`
	// Printed is when the printer confirmed the job (state done).
	Printed *time.Time `json:"printed,omitempty"`
	// WriteStarted and WriteFinished are the durable marks around the
	// current attempt's bytes.
	WriteStarted  bool `json:"write_started"`
	WriteFinished bool `json:"write_finished"`
	// Warnings say what of the label will not print as asked (a code
	// printed as QR, text shortened, characters no font has). They follow
	// from the label and the printer, so the service fills them in; the
	// store does not keep them.
	Warnings []string `json:"warnings,omitempty"`
}

// Errors, for errors.Is.
var (
	ErrNotFound = errors.New("no such job")
	// ErrConflict: the job is not in a state that allows the change.
	ErrConflict = errors.New("job state does not allow this")
	// ErrIDReused: a caller's id names a different job already.
	ErrIDReused = errors.New("job id already used for a different label or printer")
	ErrBadID    = errors.New("bad job id")
)

var idRE = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)

// ValidID reports whether id can name a job.
func ValidID(id string) error {
	if !idRE.MatchString(id) {
		return fmt.Errorf("%w %q: expected 1-64 letters, digits, '.', '_', ':' or '-'", ErrBadID, id)
	}
	return nil
}

// NewID returns a fresh random job id.
func NewID() string {
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	return "j-" + hex.EncodeToString(b)
}

// Store is the job table. It is safe for concurrent use.
type Store struct {
	db  *sql.DB
	clk clock.Clock
}

const schema = `
CREATE TABLE IF NOT EXISTS jobs (
	seq            INTEGER PRIMARY KEY AUTOINCREMENT,
	id             TEXT NOT NULL UNIQUE,
	printer        TEXT NOT NULL,
	label          TEXT NOT NULL,
	state          TEXT NOT NULL,
	attempts       INTEGER NOT NULL DEFAULT 0,
	error          TEXT NOT NULL DEFAULT '',
	reprint_of     TEXT NOT NULL DEFAULT '',
	write_started  INTEGER NOT NULL DEFAULT 0,
	write_finished INTEGER NOT NULL DEFAULT 0,
	created_ms     INTEGER NOT NULL,
	updated_ms     INTEGER NOT NULL,
	printed_ms     INTEGER,
	order_ref      TEXT NOT NULL DEFAULT '',
	buyer          TEXT NOT NULL DEFAULT '',
	discreet       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_printer_state ON jobs(printer, state, seq);
`

// addedColumns are columns added after the first release: a queue made
// by an older agent gets them on open.
var addedColumns = []struct{ name, def string }{
	{"order_ref", "TEXT NOT NULL DEFAULT ''"},
	{"buyer", "TEXT NOT NULL DEFAULT ''"},
	{"discreet", "INTEGER NOT NULL DEFAULT 0"},
}

func migrate(db *sql.DB) error {
	rows, err := db.Query(`SELECT name FROM pragma_table_info('jobs')`)
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return err
		}
		have[n] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, c := range addedColumns {
		if !have[c.name] {
			if _, err := db.Exec(`ALTER TABLE jobs ADD COLUMN ` + c.name + ` ` + c.def); err != nil {
				return fmt.Errorf("add column %s: %w", c.name, err)
			}
		}
	}
	return nil
}

// Open opens (creating) the store at path. A nil clk means the wall clock.
func Open(path string, clk clock.Clock) (*Store, error) {
	if clk == nil {
		clk = clock.Real()
	}
	db, err := sqlitex.Open(path, sqlitex.Options{Sync: sqlitex.Full})
	if err != nil {
		return nil, fmt.Errorf("print queue: %w", err)
	}
	if _, err := db.Exec(schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("print queue %s: create tables: %w", path, err)
	}
	if err := migrate(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("print queue %s: %w", path, err)
	}
	return &Store{db: db, clk: clk}, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

func (s *Store) now() int64 { return s.clk.Now().UnixMilli() }

// Recover runs once at start-up, before any worker: a job left printing
// by a stopped agent goes back to queued if no byte of it can have left,
// and to uncertain if some may have.
func (s *Store) Recover(ctx context.Context) (requeued, uncertain int, err error) {
	now := s.now()
	res, err := s.db.ExecContext(ctx, `UPDATE jobs SET state=?, updated_ms=? WHERE state=? AND write_started=0`,
		Queued, now, Printing)
	if err != nil {
		return 0, 0, fmt.Errorf("print queue: recover: %w", err)
	}
	n1, _ := res.RowsAffected()
	res, err = s.db.ExecContext(ctx, `UPDATE jobs SET state=?, error=?, updated_ms=? WHERE state=?`,
		Uncertain, "the agent stopped while this label was being sent; check the printer, then reprint or cancel it", now, Printing)
	if err != nil {
		return int(n1), 0, fmt.Errorf("print queue: recover: %w", err)
	}
	n2, _ := res.RowsAffected()
	return int(n1), int(n2), nil
}

// NewJob is what a caller submits.
type NewJob struct {
	ID      string // optional; "" gets a fresh id
	Printer string
	Label   json.RawMessage
	// Order, Buyer and Discreet are shown in the queue (see Job).
	Order    string
	Buyer    string
	Discreet bool
}

// Add stores a queued job. A job id already stored for the same printer
// and label returns that job with created false: submitting twice is
// submitting once.
func (s *Store) Add(ctx context.Context, nj NewJob) (j Job, created bool, err error) {
	if nj.ID == "" {
		nj.ID = NewID()
	}
	if err := ValidID(nj.ID); err != nil {
		return Job{}, false, err
	}
	now := s.now()
	if nj.Discreet {
		nj.Buyer = ""
	}
	res, err := s.db.ExecContext(ctx, `INSERT INTO jobs (id, printer, label, state, created_ms, updated_ms, order_ref, buyer, discreet)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO NOTHING`,
		nj.ID, nj.Printer, string(nj.Label), Queued, now, now, nj.Order, nj.Buyer, nj.Discreet)
	if err != nil {
		return Job{}, false, fmt.Errorf("print queue: add %s: %w", nj.ID, err)
	}
	n, _ := res.RowsAffected()
	j, err = s.Get(ctx, nj.ID)
	if err != nil {
		return Job{}, false, err
	}
	if n == 0 && (j.Printer != nj.Printer || !bytes.Equal(j.Label, nj.Label)) {
		return j, false, fmt.Errorf("%w: %s is a job for printer %s", ErrIDReused, nj.ID, j.Printer)
	}
	return j, n == 1, nil
}

const cols = `id, printer, label, state, attempts, error, reprint_of, write_started, write_finished, created_ms, updated_ms, printed_ms, order_ref, buyer, discreet`

type scanner interface{ Scan(...any) error }

func scanJob(r scanner) (Job, error) {
	var (
		j                   Job
		label               string
		created, updated    int64
		printed             sql.NullInt64
		wStarted, wFinished int
	)
	if err := r.Scan(&j.ID, &j.Printer, &label, &j.State, &j.Attempts, &j.Error, &j.ReprintOf,
		&wStarted, &wFinished, &created, &updated, &printed, &j.Order, &j.Buyer, &j.Discreet); err != nil {
		return Job{}, err
	}
	j.Label = json.RawMessage(label)
	j.WriteStarted, j.WriteFinished = wStarted != 0, wFinished != 0
	j.Created = time.UnixMilli(created).UTC()
	j.Updated = time.UnixMilli(updated).UTC()
	if printed.Valid {
		t := time.UnixMilli(printed.Int64).UTC()
		j.Printed = &t
	}
	return j, nil
}

// Get returns one job.
func (s *Store) Get(ctx context.Context, id string) (Job, error) {
	j, err := scanJob(s.db.QueryRowContext(ctx, `SELECT `+cols+` FROM jobs WHERE id=?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Job{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return Job{}, fmt.Errorf("print queue: get %s: %w", id, err)
	}
	return j, nil
}

// List returns up to limit jobs of printer ("" for all), newest first,
// optionally only those in the given states.
func (s *Store) List(ctx context.Context, printer string, limit int, states ...State) ([]Job, error) {
	q := `SELECT ` + cols + ` FROM jobs WHERE (?='' OR printer=?)`
	args := []any{printer, printer}
	if len(states) > 0 {
		q += ` AND state IN (` + strings.TrimSuffix(strings.Repeat("?,", len(states)), ",") + `)`
		for _, st := range states {
			args = append(args, st)
		}
	}
	q += ` ORDER BY seq DESC LIMIT ?`
	args = append(args, limit)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("print queue: list: %w", err)
	}
	defer rows.Close()
	var out []Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, fmt.Errorf("print queue: list: %w", err)
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

// Next returns the oldest job waiting for printer (queued or parked).
func (s *Store) Next(ctx context.Context, printer string) (Job, bool, error) {
	j, err := scanJob(s.db.QueryRowContext(ctx, `SELECT `+cols+` FROM jobs
		WHERE printer=? AND state IN (?, ?) ORDER BY seq LIMIT 1`, printer, Queued, Parked))
	if errors.Is(err, sql.ErrNoRows) {
		return Job{}, false, nil
	}
	if err != nil {
		return Job{}, false, fmt.Errorf("print queue: next for %s: %w", printer, err)
	}
	return j, true, nil
}

// Count returns how many jobs of printer are in the given states.
func (s *Store) Count(ctx context.Context, printer string, states ...State) (int, error) {
	q := `SELECT COUNT(*) FROM jobs WHERE printer=? AND state IN (` +
		strings.TrimSuffix(strings.Repeat("?,", len(states)), ",") + `)`
	args := []any{printer}
	for _, st := range states {
		args = append(args, st)
	}
	var n int
	if err := s.db.QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("print queue: count: %w", err)
	}
	return n, nil
}

// Depth is how many jobs of printer are still to print.
func (s *Store) Depth(ctx context.Context, printer string) (int, error) {
	return s.Count(ctx, printer, Queued, Parked, Printing)
}

// move changes job id to state to if it is in one of from, setting extra
// columns too; ErrConflict if it is not.
func (s *Store) move(ctx context.Context, id string, from []State, to State, set string, args ...any) (Job, error) {
	q := `UPDATE jobs SET state=?, updated_ms=?`
	a := []any{to, s.now()}
	if set != "" {
		q += ", " + set
		a = append(a, args...)
	}
	q += ` WHERE id=? AND state IN (` + strings.TrimSuffix(strings.Repeat("?,", len(from)), ",") + `)`
	a = append(a, id)
	for _, st := range from {
		a = append(a, st)
	}
	res, err := s.db.ExecContext(ctx, q, a...)
	if err != nil {
		return Job{}, fmt.Errorf("print queue: %s → %s: %w", id, to, err)
	}
	n, _ := res.RowsAffected()
	j, gerr := s.Get(ctx, id)
	if gerr != nil {
		return Job{}, gerr
	}
	if n == 0 {
		return j, fmt.Errorf("%w: job %s is %s, cannot become %s", ErrConflict, id, j.State, to)
	}
	return j, nil
}

// Begin starts an attempt: the job becomes printing, its attempt is
// counted, and its write marks are cleared.
func (s *Store) Begin(ctx context.Context, id string) (Job, error) {
	return s.move(ctx, id, []State{Queued, Parked}, Printing,
		`attempts=attempts+1, write_started=0, write_finished=0, error=''`)
}

// WriteStarted durably records that bytes are about to leave; call it
// before the first byte of an attempt.
func (s *Store) WriteStarted(ctx context.Context, id string) error {
	_, err := s.move(ctx, id, []State{Printing}, Printing, `write_started=1`)
	return err
}

// WriteFinished durably records that the last byte was accepted.
func (s *Store) WriteFinished(ctx context.Context, id string) error {
	_, err := s.move(ctx, id, []State{Printing}, Printing, `write_finished=1`)
	return err
}

// Done marks a printing job confirmed.
func (s *Store) Done(ctx context.Context, id string) (Job, error) {
	return s.move(ctx, id, []State{Printing}, Done, `printed_ms=?, error=''`, s.now())
}

// Retry puts a printing job of which no byte left back in the queue.
func (s *Store) Retry(ctx context.Context, id, reason string) (Job, error) {
	return s.move(ctx, id, []State{Printing}, Queued, `error=?`, reason)
}

// Fail gives up on a job that is printing, queued or parked.
func (s *Store) Fail(ctx context.Context, id, reason string) (Job, error) {
	return s.move(ctx, id, []State{Printing, Queued, Parked}, Failed, `error=?`, reason)
}

// MarkUncertain records that a printing job may or may not have printed.
func (s *Store) MarkUncertain(ctx context.Context, id, reason string) (Job, error) {
	return s.move(ctx, id, []State{Printing}, Uncertain, `error=?`, reason)
}

// Park marks every queued job of printer parked with reason (the printer
// needs an operator); it returns how many it parked.
func (s *Store) Park(ctx context.Context, printer, reason string) (int, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE jobs SET state=?, error=?, updated_ms=? WHERE printer=? AND state=?`,
		Parked, reason, s.now(), printer, Queued)
	if err != nil {
		return 0, fmt.Errorf("print queue: park %s: %w", printer, err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// Unpark puts printer's parked jobs back in the queue, in their order.
func (s *Store) Unpark(ctx context.Context, printer string) (int, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE jobs SET state=?, error='', updated_ms=? WHERE printer=? AND state=?`,
		Queued, s.now(), printer, Parked)
	if err != nil {
		return 0, fmt.Errorf("print queue: unpark %s: %w", printer, err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// Cancel drops a job that has not printed: queued, parked, uncertain or
// failed. A job being sent cannot be taken back.
func (s *Store) Cancel(ctx context.Context, id string) (Job, error) {
	return s.move(ctx, id, []State{Queued, Parked, Uncertain, Failed}, Cancelled, ``)
}

// Reprint is the operator's explicit request to print a job again. An
// uncertain, failed or cancelled job goes back in the queue as itself
// (its attempts start over); a done job is copied into a new job newID
// ("" for a fresh id) that names it in ReprintOf. Jobs still waiting or
// printing are refused: they will print anyway.
func (s *Store) Reprint(ctx context.Context, id, newID string) (Job, error) {
	j, err := s.Get(ctx, id)
	if err != nil {
		return Job{}, err
	}
	switch j.State {
	case Uncertain, Failed, Cancelled:
		return s.move(ctx, id, []State{j.State}, Queued,
			`attempts=0, write_started=0, write_finished=0, error=''`)
	case Done:
		if newID == "" {
			newID = NewID()
		}
		if err := ValidID(newID); err != nil {
			return Job{}, err
		}
		now := s.now()
		_, err := s.db.ExecContext(ctx, `INSERT INTO jobs (id, printer, label, state, reprint_of, created_ms, updated_ms, order_ref, buyer, discreet)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, newID, j.Printer, string(j.Label), Queued, j.ID, now, now, j.Order, j.Buyer, j.Discreet)
		if err != nil {
			return Job{}, fmt.Errorf("print queue: reprint %s as %s: %w", id, newID, err)
		}
		return s.Get(ctx, newID)
	}
	return j, fmt.Errorf("%w: job %s is %s and will print without a reprint", ErrConflict, id, j.State)
}
