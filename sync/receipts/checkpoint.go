package receipts

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// CheckpointDomain separates checkpoint signatures from receipt ones.
const CheckpointDomain = "fieldkit-checkpoint-v1"

// Checkpoint is a signed statement that the ledger of Box holds every
// record through AckedThrough, the last one hashing to Head. The cloud
// signs one with each acknowledgement (the box keeps it); the box signs
// one of its own head on request (`receipts checkpoint`). A ledger that
// later ends before AckedThrough was truncated.
type Checkpoint struct {
	V            int    `json:"v"`
	Box          string `json:"box"`
	AckedThrough uint64 `json:"acked_through"`
	Head         string `json:"head"`
	Turnover     int64  `json:"turnover"`
	TS           string `json:"ts"`
	Kid          string `json:"kid"`
}

// SignedCheckpoint is a checkpoint as sent and stored: exact bytes,
// signature, and the signer's public key as PEM.
type SignedCheckpoint struct {
	Checkpoint string `json:"checkpoint"`
	Sig        string `json:"sig"`
	Key        string `json:"key,omitempty"`
}

// SignCheckpoint signs cp with priv.
func SignCheckpoint(cp Checkpoint, priv ed25519.PrivateKey) (SignedCheckpoint, error) {
	pub := priv.Public().(ed25519.PublicKey)
	cp.V, cp.Kid = 1, KeyID(pub)
	b, err := json.Marshal(cp)
	if err != nil {
		return SignedCheckpoint{}, err
	}
	sig := ed25519.Sign(priv, checkpointMessage(b))
	return SignedCheckpoint{Checkpoint: string(b), Sig: base64.StdEncoding.EncodeToString(sig), Key: string(PublicPEM(pub))}, nil
}

func checkpointMessage(b []byte) []byte {
	m := append([]byte(CheckpointDomain), 0)
	return append(m, b...)
}

// Open checks the signature with trusted (or, when nil, with the key the
// checkpoint carries, which proves integrity but not who signed) and
// returns the checkpoint.
func (s SignedCheckpoint) Open(trusted ed25519.PublicKey) (*Checkpoint, error) {
	pub := trusted
	if pub == nil {
		k, err := ParsePublicPEM([]byte(s.Key))
		if err != nil {
			return nil, fmt.Errorf("checkpoint key: %w", err)
		}
		pub = k
	}
	sig, err := base64.StdEncoding.DecodeString(s.Sig)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return nil, fmt.Errorf("checkpoint signature is not %d bytes of base64", ed25519.SignatureSize)
	}
	if !ed25519.Verify(pub, checkpointMessage([]byte(s.Checkpoint)), sig) {
		return nil, fmt.Errorf("checkpoint signature does not verify")
	}
	var cp Checkpoint
	if err := json.Unmarshal([]byte(s.Checkpoint), &cp); err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	if cp.Kid != KeyID(pub) {
		return nil, fmt.Errorf("checkpoint names key %s but was verified with %s", cp.Kid, KeyID(pub))
	}
	return &cp, nil
}

// ReadCheckpoints reads a checkpoint file: one or more SignedCheckpoint
// JSON objects (as `receipts checkpoint` writes them, one per line) and
// opens each. A checkpoint that names the cloud key is checked with it;
// any other with the key it carries, which proves it unaltered but not
// who signed it. That is enough: a checkpoint only ever adds a demand on
// the ledger (records through acked_through, with that hash), so a forged
// one can fail a good ledger but never pass a bad one.
func ReadCheckpoints(r io.Reader, cloud ed25519.PublicKey) ([]*Checkpoint, error) {
	dec := json.NewDecoder(r)
	var out []*Checkpoint
	for n := 1; ; n++ {
		var sc SignedCheckpoint
		err := dec.Decode(&sc)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("checkpoint %d: %w", n, err)
		}
		var peek struct {
			Kid string `json:"kid"`
		}
		_ = json.Unmarshal([]byte(sc.Checkpoint), &peek)
		var key ed25519.PublicKey
		if cloud != nil && peek.Kid == KeyID(cloud) {
			key = cloud
		}
		cp, err := sc.Open(key)
		if err != nil {
			return nil, fmt.Errorf("checkpoint %d: %w", n, err)
		}
		out = append(out, cp)
	}
	if len(out) == 0 {
		return nil, errors.New("no checkpoint in the file")
	}
	return out, nil
}

// BoxCheckpoint signs, with the box's current key, a checkpoint of the
// ledger's head as it is now: kept off the box, it makes a later
// truncation of the tail show, like the cloud's.
func (l *Reader) BoxCheckpoint(ctx context.Context, key *Key, now time.Time) (SignedCheckpoint, error) {
	h, err := l.Head(ctx)
	if err != nil {
		return SignedCheckpoint{}, err
	}
	if h.Kid != key.ID {
		return SignedCheckpoint{}, fmt.Errorf("receipts: the key file holds key %s, but the chain head is signed by %s: %w", key.ID, h.Kid, ErrKeyMismatch)
	}
	return SignCheckpoint(Checkpoint{Box: l.box, AckedThrough: h.Seq, Head: h.Hash, Turnover: h.Turnover, TS: now.UTC().Format(tsLayout)}, key.Priv)
}
