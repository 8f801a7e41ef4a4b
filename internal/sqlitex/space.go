package sqlitex

import (
	"errors"
	"fmt"
	"strings"
	"syscall"

	"github.com/mattn/go-sqlite3"
)

// IsFull reports whether err is SQLite's "database or disk is full"
// (SQLITE_FULL), or the operating system's "no space left on device".
func IsFull(err error) bool {
	var se sqlite3.Error
	if errors.As(err, &se) && se.Code == sqlite3.ErrFull {
		return true
	}
	return errors.Is(err, syscall.ENOSPC)
}

// IsNoTransaction reports whether err is SQLite refusing a ROLLBACK
// because no transaction is open: SQLite has already rolled back by
// itself after SQLITE_FULL, SQLITE_IOERR or SQLITE_NOMEM, so there is
// nothing left to undo.
func IsNoTransaction(err error) bool {
	return err != nil && strings.Contains(err.Error(), "no transaction is active")
}

// FreeBytes is the space an unprivileged process may still write on the
// filesystem holding path.
func FreeBytes(path string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, fmt.Errorf("free space of %s: %w", path, err)
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}
