package secret

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ file, want string }{
		{"s3cret\n", "s3cret"},
		{"s3cret\r\n", "s3cret"},
		{"s3cret", "s3cret"},
		{" spaced pass \n\n", " spaced pass "},
	} {
		p := filepath.Join(dir, "pw")
		if err := os.WriteFile(p, []byte(tc.file), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := Read(p)
		if err != nil || got != tc.want {
			t.Errorf("Read(%q) = %q, %v; want %q", tc.file, got, err, tc.want)
		}
	}
	_, err := Read(filepath.Join(dir, "missing"))
	if err == nil || !strings.Contains(err.Error(), "read secret") || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}
