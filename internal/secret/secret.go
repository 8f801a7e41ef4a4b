// Package secret reads the secrets the config names by file (passwords,
// tokens), so that no part needs the config aggregate or another part to
// read one.
package secret

import (
	"fmt"
	"os"
	"strings"
)

// Read returns the contents of the file at path without its trailing
// line break: an editor's final newline is not part of a password.
func Read(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read secret: %w", err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}
