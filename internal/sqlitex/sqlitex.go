// Package sqlitex opens the agent's SQLite databases the one way they
// should be opened on a box that loses power: WAL, a busy timeout instead
// of "database is locked", and the synchronous level each store needs.
package sqlitex

import (
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	_ "github.com/mattn/go-sqlite3" // registers the "sqlite3" driver
)

// Sync is SQLite's synchronous setting.
type Sync string

const (
	// Full fsyncs the WAL on every commit: a commit that returned survives
	// a power cut. The ledger and the print queue use it.
	Full Sync = "FULL"
	// Normal may lose the last commits on a power cut, never corrupt.
	Normal Sync = "NORMAL"
)

// Options for Open.
type Options struct {
	Sync Sync
	// ReadOnly opens without creating or writing (verify, export, doctor).
	ReadOnly bool
}

// Open opens (creating the directory and file unless ReadOnly) the
// database at path.
func Open(path string, o Options) (*sql.DB, error) {
	if o.Sync == "" {
		o.Sync = Full
	}
	q := url.Values{}
	q.Set("_busy_timeout", "5000")
	q.Set("_foreign_keys", "1")
	if o.ReadOnly {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("open database %s: %w", path, err)
		}
		q.Set("mode", "ro")
	} else {
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			return nil, fmt.Errorf("open database %s: %w", path, err)
		}
		q.Set("_journal_mode", "WAL")
		q.Set("_synchronous", string(o.Sync))
		q.Set("_txlock", "immediate")
	}
	db, err := sql.Open("sqlite3", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	if err := db.Ping(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	return db, nil
}
