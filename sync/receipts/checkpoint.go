package receipts

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
)

// CheckpointDomain separates checkpoint signatures from receipt ones.
const CheckpointDomain = "fieldkit-checkpoint-v1"

// Checkpoint is the cloud's signed acknowledgement: it has every record of
// Box through AckedThrough, and the last one hashes to Head. The box keeps
// it; a ledger that later ends before AckedThrough was truncated.
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
