package receipts

import (
	"fmt"
	"os"
	"strings"

	"fieldkit/internal/clocksync"
)

// SyncStatus tells whether the wall clock has been set by NTP or an RTC.
// A Pi without an RTC boots at 1970; its receipts say clock_synced=false.
type SyncStatus = clocksync.Checker

// SyncFunc adapts a function to SyncStatus.
type SyncFunc = clocksync.Func

// DefaultBootIDPath is where Linux publishes the id of the current boot.
const DefaultBootIDPath = "/proc/sys/kernel/random/boot_id"

// ReadBootID reads the boot id from path (DefaultBootIDPath when empty).
func ReadBootID(path string) (string, error) {
	if path == "" {
		path = DefaultBootIDPath
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("boot id: %w", err)
	}
	id := strings.TrimSpace(string(b))
	if id == "" {
		return "", fmt.Errorf("boot id: %s is empty", path)
	}
	return id, nil
}
