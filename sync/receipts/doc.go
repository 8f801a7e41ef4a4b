// Package receipts is the box's signed, hash-chained, gapless receipt
// ledger: orders from the point-of-sale tablet become records that are
// numbered from a chain-head row, linked by SHA-256 to the previous record,
// signed with the box's Ed25519 key, and committed to SQLite with
// synchronous=FULL before anyone is told they exist.
//
// The exact bytes that are signed and hashed are documented in README.md,
// so that a verifier written in another language can check an export with
// nothing but the PEM public key.
package receipts
