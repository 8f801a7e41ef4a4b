package ingest

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"fieldkit/sync/receipts"
)

// Store keeps what the ingest accepted. Two backends implement it:
// SQLite (one file, the embedded default for the demo and tests) and
// PostgreSQL (a fleet, several ingest instances on one database). The
// ingest's rules live in the Server, once; a store only has to give it a
// transaction that holds one box's lock, so that two instances receiving
// the same box's batches take turns on it.
type Store interface {
	// Begin starts a transaction holding box's lock until Commit or
	// Rollback: nobody else can add records to box meanwhile.
	Begin(ctx context.Context, box string) (Tx, error)
	// Enrollment returns box's enrollment, nil when it has none.
	Enrollment(ctx context.Context, box string) (*Enrollment, error)
	// Enroll registers (or re-registers) a box. It refuses a first key
	// that differs from the one the stored chain started with.
	Enroll(ctx context.Context, e Enrollment) error
	// Boxes lists every enrolled or heard-from box.
	Boxes(ctx context.Context) ([]BoxStatus, error)
	// Alarms returns the newest alarms first, at most limit.
	Alarms(ctx context.Context, limit int) ([]Alarm, error)
	// Records calls fn for box's stored records from seq after+1 on, in
	// order.
	Records(ctx context.Context, box string, after uint64, fn func(receipts.Signed) error) error
	// Sales sums the stored sales (see FleetReport).
	Sales(ctx context.Context, since time.Time) (*FleetReport, error)
	// Backend names the database ("sqlite", "postgresql").
	Backend() string
	Close() error
}

// Tx is one batch's transaction on one box.
type Tx interface {
	// State returns the box's stored chain, nil when nothing is stored.
	State(ctx context.Context) (*BoxState, error)
	// Hashes returns the stored chain hashes of seqs from..to.
	Hashes(ctx context.Context, from, to uint64) (map[uint64]string, error)
	// Insert stores verified records (all after the stored head).
	Insert(ctx context.Context, rows []Row) error
	// Save stores the box's chain state after the batch.
	Save(ctx context.Context, st *BoxState) error
	// PinKey sets the first key of a box enrolled by token alone.
	PinKey(ctx context.Context, pub ed25519.PublicKey) error
	Alarm(ctx context.Context, a Alarm) error
	Commit(ctx context.Context) error
	// Rollback undoes an uncommitted transaction; after Commit it does
	// nothing.
	Rollback() error
}

// Enrollment is an admin's word that a box may send: its id, where it
// stands, the hash of its bearer token and (unless it enrolls by token)
// the public key of its record 1.
type Enrollment struct {
	Box   string `json:"box"`
	Venue string `json:"venue,omitempty"`
	// FirstKey, when nil, is pinned from the Fieldkit-Box-Key header of
	// the box's first accepted batch (enrollment by token).
	FirstKey  ed25519.PublicKey `json:"-"`
	TokenHash string            `json:"-"`
}

// TokenHash is how a per-box token is stored: hex SHA-256. A token is
// 32 random bytes, so a plain hash is enough (no dictionary to guess).
func TokenHash(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// BoxState is a box's chain as the cloud holds it.
type BoxState struct {
	Box      string
	Seq      uint64
	Head     string
	Turnover int64
	SignKid  string
	Keys     map[string]ed25519.PublicKey
	FirstKey ed25519.PublicKey
	LastTS   time.Time
	// Checkpoint is the JSON of the last signed checkpoint.
	Checkpoint string
	// LastContact is when the box last sent a batch; BoxHead the head
	// seq its ledger had then (0 when it did not say).
	LastContact time.Time
	BoxHead     uint64
}

func (st *BoxState) chain() *receipts.Chain {
	c := &receipts.Chain{Box: st.Box, Seq: st.Seq, Head: st.Head, Turnover: st.Turnover, SignKid: st.SignKid,
		Keys: make(map[string]ed25519.PublicKey, len(st.Keys)), LastTS: st.LastTS}
	for k, v := range st.Keys {
		c.Keys[k] = v
	}
	return c
}

func encodeKeys(keys map[string]ed25519.PublicKey) string {
	m := make(map[string]string, len(keys))
	for id, k := range keys {
		m[id] = base64.StdEncoding.EncodeToString(k)
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func decodeKeys(s string) (map[string]ed25519.PublicKey, error) {
	m := map[string]string{}
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("stored keys: %w", err)
	}
	out := make(map[string]ed25519.PublicKey, len(m))
	for id, k := range m {
		b, err := base64.StdEncoding.DecodeString(k)
		if err != nil || len(b) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("stored key %s is not an Ed25519 public key", id)
		}
		out[id] = b
	}
	return out, nil
}

func decodeKey(s string) (ed25519.PublicKey, error) {
	if s == "" {
		return nil, nil
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, errors.New("stored first key is not an Ed25519 public key")
	}
	return b, nil
}

func encodeKey(k ed25519.PublicKey) string {
	if k == nil {
		return ""
	}
	return base64.StdEncoding.EncodeToString(k)
}

// Row is one verified record to store, with the fields the fleet report
// sums taken from it.
type Row struct {
	Seq        uint64
	Hash       string
	Body       []byte
	Sig        string
	ReceivedMS int64
	Type       string
	TS         time.Time
	Pay        string
	Total      int64
	Currency   string
	Items      []receipts.Item
}

// Alarm is a fork (tamper alarm) or an invalid record.
type Alarm struct {
	At   time.Time `json:"at"`
	Box  string    `json:"box"`
	Kind string    `json:"kind"`
	Msg  string    `json:"msg"`
}

// Alarm kinds.
const (
	// AlarmFork: a record signed by the box's key arrived for a seq the
	// cloud holds with another hash. The box's chain forked: a restored
	// backup, a cloned card or a stolen key.
	AlarmFork = "fork"
	// AlarmInvalid: a record that does not verify (bad signature, broken
	// link, wrong turnover). It proves nothing about the box's chain.
	AlarmInvalid = "invalid"
)

// BoxStatus is what operators see of a box.
type BoxStatus struct {
	Box          string    `json:"box"`
	Venue        string    `json:"venue,omitempty"`
	Enrolled     bool      `json:"enrolled"`
	AckedThrough uint64    `json:"acked_through"`
	Turnover     int64     `json:"turnover"`
	LastContact  time.Time `json:"last_contact,omitzero"`
	// BoxHead is the head seq the box last reported; Backlog is what it
	// holds that the cloud does not (as of its last contact).
	BoxHead uint64 `json:"box_head,omitempty"`
	Backlog uint64 `json:"backlog"`
	Forks   int    `json:"forks"`
	Invalid int    `json:"invalid"`
}

// FleetReport is the fleet's end-of-show report, summed from the stored
// records: only records that verified on the way in are stored.
type FleetReport struct {
	Since    time.Time           `json:"since,omitzero"`
	Count    int                 `json:"count"`
	Total    int64               `json:"total"`
	ByBox    []BoxTotal          `json:"by_box"`
	BySKU    []receipts.SKUTotal `json:"by_sku"`
	ByPay    []receipts.PayTotal `json:"by_pay"`
	ByHour   []HourTotal         `json:"by_hour"`
	Verified bool                `json:"verified"` // every chain re-verified from the database first
}

// BoxTotal is one box's (venue's) sales.
type BoxTotal struct {
	Box      string `json:"box"`
	Venue    string `json:"venue,omitempty"`
	Currency string `json:"currency,omitempty"`
	Count    int    `json:"count"`
	Total    int64  `json:"total"`
}

// HourTotal is the sales of one UTC hour.
type HourTotal struct {
	Hour  time.Time `json:"hour"`
	Count int       `json:"count"`
	Total int64     `json:"total"`
}
