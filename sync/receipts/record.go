package receipts

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
)

// Domain strings. Changing any of them breaks every existing ledger.
const (
	// SignDomain is prepended (with a NUL) to the stored bytes before
	// signing, so that a receipt signature can never be replayed as a
	// signature over anything else the key signs.
	SignDomain = "fieldkit-receipt-v1"
	// GenesisDomain starts the chain: prev of record 1 is
	// SHA-256(GenesisDomain NUL box NUL kid).
	GenesisDomain = "fieldkit-receipt-genesis-v1"
	// Version is the record format ("v").
	Version = 1
)

// Domain is a signing domain: the prefixes of the signed message and of
// the genesis hash. A record signed in one domain never verifies in
// another, even under the same key and box id.
type Domain struct {
	Name    string // what the ledger records and status shows
	Sign    string
	Genesis string
}

// The domains. Real is the sales ledger's; Rehearsal signs the separate
// ledger a box in rehearsal mode sells into, so that a rehearsal sale can
// never pass as a real receipt.
var (
	Real      = Domain{Name: "real", Sign: SignDomain, Genesis: GenesisDomain}
	Rehearsal = Domain{Name: "rehearsal", Sign: "fieldkit-rehearsal-v1", Genesis: "fieldkit-rehearsal-genesis-v1"}
)

// orReal is d, or Real when d is the zero Domain.
func (d Domain) orReal() Domain {
	if d.Sign == "" {
		return Real
	}
	return d
}

// Record types.
const (
	TypeSale     = "sale"
	TypeRotation = "key_rotation"
	// TypeHandover records that a sale's order was handed to its buyer
	// at the pickup desk. It moves no money: its turnover is the
	// previous record's.
	TypeHandover = "handover"
)

// Item is one order line; Price is the unit price in minor units.
type Item struct {
	SKU   string `json:"sku"`
	Qty   int64  `json:"qty"`
	Price int64  `json:"price"`
}

// Buyer is who bought. In discreet mode only Token is kept.
type Buyer struct {
	Name  string `json:"name,omitempty"`
	Phone string `json:"phone,omitempty"`
	Email string `json:"email,omitempty"`
	Token string `json:"token,omitempty"`
}

// Record is one ledger entry, as decoded. The stored bytes, not this
// struct, are what is signed; encodeRecord writes them (the struct's tags
// are for decoding and for the API's parsed copy).
type Record struct {
	V           int    `json:"v"`
	Type        string `json:"type"`
	Box         string `json:"box"`
	Kid         string `json:"kid"`
	Seq         uint64 `json:"seq"`
	TS          string `json:"ts"`
	ClockSynced bool   `json:"clock_synced"`
	Boot        string `json:"boot"`
	Prev        string `json:"prev"`
	Turnover    int64  `json:"turnover"`

	Order    string `json:"order,omitempty"`
	ClientID string `json:"client_id,omitempty"`
	Items    []Item `json:"items,omitempty"`
	Total    int64  `json:"total,omitempty"`
	Currency string `json:"currency,omitempty"`
	Pay      string `json:"pay,omitempty"`
	Buyer    *Buyer `json:"buyer,omitempty"`

	// NewKid and NewKey (base64 of the 32-byte Ed25519 public key) are set
	// on a key_rotation record only.
	NewKid string `json:"new_kid,omitempty"`
	NewKey string `json:"new_key,omitempty"`

	// Sale (the seq of the sale handed over) and By (who handed it over:
	// a scanner or a crew member) are set on a handover record, with
	// Order, the sale's order number.
	Sale uint64 `json:"sale,omitempty"`
	By   string `json:"by,omitempty"`
}

// Signed is a record as stored and exported: the exact bytes, the
// signature over them, and the chain hash. Its JSON form is one line of an
// export (NDJSON).
type Signed struct {
	Seq uint64 `json:"seq"`
	// Record is the exact stored bytes, as a JSON string.
	Record string `json:"record"`
	// Sig is the 64-byte Ed25519 signature, standard base64.
	Sig string `json:"sig"`
	// Hash is hex SHA-256(record bytes || raw signature): the next
	// record's prev.
	Hash string `json:"hash"`
}

// Genesis is the prev of record 1 for box and kid in the real domain.
func Genesis(box, kid string) string { return Real.GenesisHash(box, kid) }

// GenesisHash is the prev of record 1 for box and kid in domain d.
func (d Domain) GenesisHash(box, kid string) string {
	h := sha256.New()
	h.Write([]byte(d.orReal().Genesis))
	h.Write([]byte{0})
	h.Write([]byte(box))
	h.Write([]byte{0})
	h.Write([]byte(kid))
	return hex.EncodeToString(h.Sum(nil))
}

// SignedMessage is what the Ed25519 signature covers in the real domain.
func SignedMessage(body []byte) []byte { return Real.Message(body) }

// Message is what the Ed25519 signature covers in domain d.
func (d Domain) Message(body []byte) []byte {
	dom := d.orReal().Sign
	m := make([]byte, 0, len(dom)+1+len(body))
	m = append(m, dom...)
	m = append(m, 0)
	return append(m, body...)
}

// ChainHash is hex SHA-256(body || sig): the link to the next record.
func ChainHash(body, sig []byte) string {
	h := sha256.New()
	h.Write(body)
	h.Write(sig)
	return hex.EncodeToString(h.Sum(nil))
}

// KeyID is the first 16 hex digits of SHA-256 of the raw public key.
func KeyID(pub ed25519.PublicKey) string {
	s := sha256.Sum256(pub)
	return hex.EncodeToString(s[:8])
}

// The canonical encoder. Every record is written by these functions and
// only by them: the writer signs their output, and a verifier re-encodes
// what it decoded and refuses stored bytes that differ (a field missing,
// added, repeated or out of order). The bytes are the fields in the order
// the README lists, each value as encoding/json writes it.

// appendHead appends the fields every record starts with, through
// turnover, leaving the object open.
func appendHead(m []byte, v int, typ string, box []byte, kid string, seq uint64, ts string, synced bool, boot []byte, prev string, turnover int64) []byte {
	m = append(m, `{"v":`...)
	m = strconv.AppendInt(m, int64(v), 10)
	m = append(m, `,"type":`...)
	m = appendJSONString(m, typ)
	m = append(m, `,"box":`...)
	m = append(m, box...)
	m = append(m, `,"kid":`...)
	m = appendJSONString(m, kid)
	m = append(m, `,"seq":`...)
	m = strconv.AppendUint(m, seq, 10)
	m = append(m, `,"ts":`...)
	m = appendJSONString(m, ts)
	m = append(m, `,"clock_synced":`...)
	m = strconv.AppendBool(m, synced)
	m = append(m, `,"boot":`...)
	m = append(m, boot...)
	m = append(m, `,"prev":`...)
	m = appendJSONString(m, prev)
	m = append(m, `,"turnover":`...)
	return strconv.AppendInt(m, turnover, 10)
}

// appendSaleTail appends the fields of a sale after turnover and closes
// the object. total is always written, 0 included; buyer only when it
// holds something.
func appendSaleTail(m []byte, order, clientID string, items []Item, total int64, currency, pay string, buyer *Buyer) ([]byte, error) {
	m = append(m, `,"order":`...)
	m = appendJSONString(m, order)
	m = append(m, `,"client_id":`...)
	m = appendJSONString(m, clientID)
	m = append(m, `,"items":`...)
	ib, err := json.Marshal(items)
	if err != nil {
		return nil, err
	}
	m = append(m, ib...)
	m = append(m, `,"total":`...)
	m = strconv.AppendInt(m, total, 10)
	m = append(m, `,"currency":`...)
	m = appendJSONString(m, currency)
	m = append(m, `,"pay":`...)
	m = appendJSONString(m, pay)
	if buyer != nil && *buyer != (Buyer{}) {
		bb, err := json.Marshal(buyer)
		if err != nil {
			return nil, err
		}
		m = append(m, `,"buyer":`...)
		m = append(m, bb...)
	}
	return append(m, '}'), nil
}

// appendRotationTail appends the fields of a key rotation after turnover
// and closes the object.
func appendRotationTail(m []byte, newKid, newKey string) []byte {
	m = append(m, `,"new_kid":`...)
	m = appendJSONString(m, newKid)
	m = append(m, `,"new_key":`...)
	m = appendJSONString(m, newKey)
	return append(m, '}')
}

// appendHandoverTail appends the fields of a hand-over after turnover and
// closes the object.
func appendHandoverTail(m []byte, sale uint64, order, by string) []byte {
	m = append(m, `,"sale":`...)
	m = strconv.AppendUint(m, sale, 10)
	m = append(m, `,"order":`...)
	m = appendJSONString(m, order)
	m = append(m, `,"by":`...)
	m = appendJSONString(m, by)
	return append(m, '}')
}

// encodeRecord returns the canonical stored bytes of r.
func encodeRecord(r *Record) ([]byte, error) {
	m := appendHead(make([]byte, 0, 512), r.V, r.Type, jsonString(r.Box), r.Kid, r.Seq, r.TS, r.ClockSynced, jsonString(r.Boot), r.Prev, r.Turnover)
	switch r.Type {
	case TypeSale:
		b, err := appendSaleTail(m, r.Order, r.ClientID, r.Items, r.Total, r.Currency, r.Pay, r.Buyer)
		if err != nil {
			return nil, fmt.Errorf("encode record %d: %w", r.Seq, err)
		}
		return b, nil
	case TypeRotation:
		return appendRotationTail(m, r.NewKid, r.NewKey), nil
	case TypeHandover:
		return appendHandoverTail(m, r.Sale, r.Order, r.By), nil
	}
	return nil, fmt.Errorf("encode record %d: unknown record type %q", r.Seq, r.Type)
}

func jsonString(s string) []byte {
	b, _ := json.Marshal(s)
	return b
}

// appendJSONString appends s as encoding/json writes it. Ids, hashes,
// times and base64 need no escaping and take the short path.
func appendJSONString(m []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return append(m, jsonString(s)...)
		}
	}
	m = append(m, '"')
	m = append(m, s...)
	return append(m, '"')
}

func signRecord(r *Record, priv ed25519.PrivateKey) (Signed, error) {
	return signRecordIn(Real, r, priv)
}

// signRecordIn is signRecord in domain d.
func signRecordIn(d Domain, r *Record, priv ed25519.PrivateKey) (Signed, error) {
	body, err := encodeRecord(r)
	if err != nil {
		return Signed{}, err
	}
	sig := ed25519.Sign(priv, d.Message(body))
	return Signed{Seq: r.Seq, Record: string(body), Sig: base64.StdEncoding.EncodeToString(sig), Hash: ChainHash(body, sig)}, nil
}

func makeSigned(seq uint64, body, sig []byte) Signed {
	return Signed{Seq: seq, Record: string(body), Sig: base64.StdEncoding.EncodeToString(sig), Hash: ChainHash(body, sig)}
}

// Decode parses the stored bytes.
func (s Signed) Decode() (*Record, error) {
	var r Record
	if err := json.Unmarshal([]byte(s.Record), &r); err != nil {
		return nil, fmt.Errorf("record bytes are not a receipt: %w", err)
	}
	return &r, nil
}

// RawSig decodes the signature.
func (s Signed) RawSig() ([]byte, error) {
	sig, err := base64.StdEncoding.DecodeString(s.Sig)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return nil, fmt.Errorf("signature is not %d bytes of base64", ed25519.SignatureSize)
	}
	return sig, nil
}

// Short is the short hash printed on a label beside seq.
func (s Signed) Short() string {
	if len(s.Hash) < 8 {
		return s.Hash
	}
	return s.Hash[:8]
}
