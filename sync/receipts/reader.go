package receipts

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"fmt"

	"fieldkit/internal/sqlitex"
)

// Reader reads a ledger without writing: verify, export and report, from
// the agent or from the command line while the agent runs.
type Reader struct {
	db  *sql.DB
	box string
	dom Domain
}

// OpenReader opens the ledger at path read-only.
func OpenReader(path string) (*Reader, error) {
	db, err := sqlitex.Open(path, sqlitex.Options{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("receipts: %w", err)
	}
	r := &Reader{db: db}
	if err := db.QueryRow(`SELECT v FROM meta WHERE k='box'`).Scan(&r.box); err != nil {
		db.Close()
		return nil, fmt.Errorf("receipts: %s is not a receipt ledger: %w", path, err)
	}
	if r.dom, err = readDomain(db); err != nil {
		db.Close()
		return nil, err
	}
	return r, nil
}

// Close closes a reader from OpenReader.
func (l *Reader) Close() error { return l.db.Close() }

// VerifyOptions say what to trust.
type VerifyOptions struct {
	// First is the box's first public key: the one trust root. Every
	// later key must be announced by a rotation record signed by the key
	// before it. Nil starts from the first key recorded in the ledger
	// itself, which proves the chain is intact but not whose it is.
	First ed25519.PublicKey
	// Current, when set, must be the key that signs the chain's head: the
	// key file on the box.
	Current ed25519.PublicKey
	// Checkpoints are signed checkpoints (the cloud's, the box's own) to
	// hold the ledger to; none given uses the newest one the ledger
	// stored.
	Checkpoints []*Checkpoint
}

// Verify checks the whole ledger: signatures, links, gaps, duplicates,
// turnover, keys, and the tail against the checkpoint.
func (l *Reader) Verify(ctx context.Context, o VerifyOptions) (*Report, error) {
	var first *Key
	if o.First != nil {
		first = &Key{Pub: o.First, ID: KeyID(o.First)}
	}
	c, p, err := startChain(ctx, l.db, l.dom, l.box, first)
	if err != nil {
		return nil, err
	}
	if p != nil {
		return &Report{Box: l.box, Problem: p}, nil
	}
	cps := o.Checkpoints
	if len(cps) == 0 {
		s, err := l.LatestCheckpoint(ctx)
		if err != nil {
			return nil, err
		}
		if s != nil {
			cp, err := s.Open(nil)
			if err != nil {
				return nil, fmt.Errorf("receipts: stored checkpoint: %w", err)
			}
			cps = []*Checkpoint{cp}
		}
	}
	rows, err := l.db.QueryContext(ctx, `SELECT seq, body, sig FROM records WHERE seq > ? ORDER BY seq`, c.Seq)
	if err != nil {
		return nil, fmt.Errorf("receipts: verify: %w", err)
	}
	defer rows.Close()
	src := func() (Signed, bool, error) {
		if !rows.Next() {
			return Signed{}, false, rows.Err()
		}
		var seq uint64
		var body, sig []byte
		if err := rows.Scan(&seq, &body, &sig); err != nil {
			return Signed{}, false, err
		}
		return makeSigned(seq, body, sig), true, nil
	}
	rep, err := VerifyAll(c, src, cps...)
	if err != nil {
		return nil, fmt.Errorf("receipts: verify: %w", err)
	}
	if rep.OK() {
		var h Head
		if err := l.db.QueryRowContext(ctx, `SELECT seq, hash, turnover, kid FROM head WHERE id=1`).Scan(&h.Seq, &h.Hash, &h.Turnover, &h.Kid); err != nil {
			return nil, fmt.Errorf("receipts: verify: %w", err)
		}
		switch {
		case h.Seq != c.Seq:
			rep.Problem = &Problem{Seq: c.Seq + 1, Reason: Truncated, Detail: fmt.Sprintf("the chain head row says seq %d but the records end at seq %d", h.Seq, c.Seq)}
		case h.Hash != c.Head:
			rep.Problem = &Problem{Seq: c.Seq, Reason: BrokenLink, Detail: "the chain head row's hash is not the hash of the last record"}
		case o.Current != nil && KeyID(o.Current) != c.SignKid:
			rep.Problem = &Problem{Seq: c.Seq + 1, Reason: UnknownKey, Detail: fmt.Sprintf("the key file holds key %s, but the chain is signed by %s from here on", KeyID(o.Current), c.SignKid)}
		}
	}
	return rep, nil
}

// Box is the ledger's box id.
func (l *Reader) Box() string { return l.box }

// FirstKey is the public key that signed record 1, as the ledger recorded
// it: what a cloud that has never seen this box is told to trust.
func (l *Reader) FirstKey(ctx context.Context) (ed25519.PublicKey, error) {
	c, _, err := startChain(ctx, l.db, l.dom, l.box, nil)
	if err != nil {
		return nil, err
	}
	if c == nil || c.anchor == nil {
		return nil, fmt.Errorf("receipts: the first key is pruned away with the records it signed")
	}
	return c.anchor, nil
}

// Domain is the signing domain of the ledger's records.
func (l *Reader) Domain() Domain { return l.dom.orReal() }
