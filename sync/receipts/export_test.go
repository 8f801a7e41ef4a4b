package receipts

// Hooks for the external tests (package receipts_test), which play an
// attacker holding a key of their own.
var (
	SignRecordForTest = signRecord
)
