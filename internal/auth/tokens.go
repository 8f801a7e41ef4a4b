package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"fieldkit/internal/httpapi"
)

// TokenDir is the tokens' folder under the data dir.
const TokenDir = "tokens"

// Roles that hold a token, in the order they are shown.
var tokenRoles = []httpapi.Role{httpapi.Crew, httpapi.Admin}

// Store keeps the crew and admin tokens in files (mode 0600) under the
// data dir. It notices when a file changes (token rotate from the command
// line), so the running agent never needs a restart for a new token.
type Store struct {
	dir string

	mu    sync.Mutex
	files map[httpapi.Role]*tokenFile
}

type tokenFile struct {
	path  string
	tok   []byte
	mtime time.Time
	size  int64
}

// ErrNoToken is returned for a role that has no token (public).
var ErrNoToken = errors.New("this role has no token")

// OpenStore reads the tokens under dataDir, creating any that is missing.
// created lists the roles whose token was made now.
func OpenStore(dataDir string) (s *Store, created []httpapi.Role, err error) {
	dir := filepath.Join(dataDir, TokenDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("auth: token dir: %w", err)
	}
	s = &Store{dir: dir, files: map[httpapi.Role]*tokenFile{}}
	for _, role := range tokenRoles {
		tf := &tokenFile{path: filepath.Join(dir, role.String()+".token")}
		s.files[role] = tf
		if _, err := os.Stat(tf.path); errors.Is(err, os.ErrNotExist) {
			if _, err := s.Rotate(role); err != nil {
				return nil, nil, err
			}
			created = append(created, role)
			continue
		}
		if err := tf.load(); err != nil {
			return nil, nil, err
		}
	}
	return s, created, nil
}

// Path is the file holding role's token.
func (s *Store) Path(role httpapi.Role) string {
	if tf, ok := s.files[role]; ok {
		return tf.path
	}
	return ""
}

func (tf *tokenFile) load() error {
	fi, err := os.Stat(tf.path)
	if err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	if fi.ModTime().Equal(tf.mtime) && fi.Size() == tf.size && tf.tok != nil {
		return nil
	}
	b, err := os.ReadFile(tf.path)
	if err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if len(tok) < 16 {
		return fmt.Errorf("auth: %s: token shorter than 16 characters; delete the file and restart to make a new one", tf.path)
	}
	tf.tok, tf.mtime, tf.size = []byte(tok), fi.ModTime(), fi.Size()
	return nil
}

// Token returns role's current token.
func (s *Store) Token(role httpapi.Role) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	tf, ok := s.files[role]
	if !ok {
		return "", ErrNoToken
	}
	if err := tf.load(); err != nil {
		return "", err
	}
	return string(tf.tok), nil
}

// Match returns the role whose token tok is. Both tokens are always
// compared in constant time, so the answer's timing says nothing about
// which one was near.
func (s *Store) Match(tok string) (httpapi.Role, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	got := httpapi.Public
	for _, role := range tokenRoles {
		tf := s.files[role]
		if err := tf.load(); err != nil {
			continue
		}
		if subtle.ConstantTimeCompare([]byte(tok), tf.tok) == 1 {
			got = role
		}
	}
	return got, got != httpapi.Public
}

// key returns the secret a role's session cookies are signed with: it is
// derived from the token, so rotating a token ends its sessions.
func (s *Store) key(role httpapi.Role) ([]byte, error) {
	tok, err := s.Token(role)
	if err != nil {
		return nil, err
	}
	return []byte("fieldkit-session-v1\x00" + tok), nil
}

// Rotate makes a new token for role, replacing the file atomically, and
// returns it.
func (s *Store) Rotate(role httpapi.Role) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	tf, ok := s.files[role]
	if !ok {
		return "", ErrNoToken
	}
	var raw [24]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("auth: %w", err)
	}
	tok := "fk" + role.String()[:1] + "_" + base64.RawURLEncoding.EncodeToString(raw[:])
	tmp, err := os.CreateTemp(s.dir, "."+role.String()+".token-*")
	if err != nil {
		return "", fmt.Errorf("auth: %w", err)
	}
	defer os.Remove(tmp.Name())
	// CreateTemp already makes the file 0600; say so for the reader.
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return "", fmt.Errorf("auth: %w", err)
	}
	if _, err := tmp.WriteString(tok + "\n"); err != nil {
		tmp.Close()
		return "", fmt.Errorf("auth: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return "", fmt.Errorf("auth: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("auth: %w", err)
	}
	if err := os.Rename(tmp.Name(), tf.path); err != nil {
		return "", fmt.Errorf("auth: %w", err)
	}
	tf.tok = nil
	if err := tf.load(); err != nil {
		return "", err
	}
	return tok, nil
}
