// Package wire holds the types of the uplink protocol that both ends
// share: the box's uplink (sync/uplink) sends batches and reads the
// answer, the cloud's ingest (sync/ingest) reads batches and writes it.
// Neither end imports the other.
//
// A batch is a POST of gzip-compressed NDJSON, one signed record a line
// (receipts.WriteLine); the answer is a Response.
package wire

import "fieldkit/sync/receipts"

// Headers and limits of the protocol.
const (
	// HeaderBoxKey carries the base64 Ed25519 public key that signed the
	// box's record 1, for a box enrolled by token alone or a cloud that
	// trusts boxes on first use.
	HeaderBoxKey = "Fieldkit-Box-Key"
	// HeaderBoxHead optionally carries the head seq of the box's ledger,
	// so that the cloud's operators see each box's backlog.
	HeaderBoxHead = "Fieldkit-Box-Head"
	// MaxBatchBytes is the largest decompressed batch accepted.
	MaxBatchBytes = 16 << 20
)

// Response is the JSON answer to a batch (on 200 and 409).
type Response struct {
	AckedThrough uint64                     `json:"acked_through"`
	Checkpoint   *receipts.SignedCheckpoint `json:"checkpoint,omitempty"`
	Accepted     int                        `json:"accepted"`
	Duplicates   int                        `json:"duplicates"`
	// ExpectedSeq is set on 409: the seq the cloud needs next.
	ExpectedSeq uint64 `json:"expected_seq,omitempty"`
	// Fork is set on 409 when a seq arrived again with another hash,
	// validly signed by a key of the box's chain.
	Fork  bool   `json:"fork,omitempty"`
	Error string `json:"error,omitempty"`
}
