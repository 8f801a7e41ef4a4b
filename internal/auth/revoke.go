package auth

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"fieldkit/internal/httpapi"
)

// RevokedFile lists the sessions ended by logout before they expired,
// under the token dir; it survives restarts, as the sessions do.
const RevokedFile = "ended-sessions.json"

// maxRevoked bounds the list: a session lasts 12 h, so even a busy show
// day logs out far fewer; past it the oldest entries go first.
const maxRevoked = 4096

// revocations are the sessions ended by logout, by the SHA-256 of the
// cookie, each kept until the session would have expired anyway.
type revocations struct {
	path string
	mu   sync.Mutex
	m    map[string]int64 // hash → expiry (Unix seconds)
}

func openRevocations(dir string) *revocations {
	return &revocations{path: filepath.Join(dir, RevokedFile), m: map[string]int64{}}
}

func cookieHash(v string) string {
	h := sha256.Sum256([]byte(v))
	return hex.EncodeToString(h[:])
}

func (rv *revocations) load(now time.Time) error {
	b, err := os.ReadFile(rv.path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	m := map[string]int64{}
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("%s: %w", rv.path, err)
	}
	rv.mu.Lock()
	defer rv.mu.Unlock()
	for k, exp := range m {
		if exp > now.Unix() && len(k) == 2*sha256.Size {
			rv.m[k] = exp
		}
	}
	return nil
}

func (rv *revocations) has(cookie string) bool {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	_, ok := rv.m[cookieHash(cookie)]
	return ok
}

// add ends a session in memory at once, then on disk (atomically).
func (rv *revocations) add(cookie string, exp int64, now time.Time) error {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	for k, e := range rv.m {
		if e <= now.Unix() {
			delete(rv.m, k)
		}
	}
	for len(rv.m) >= maxRevoked {
		var oldest string
		for k, e := range rv.m {
			if oldest == "" || e < rv.m[oldest] {
				oldest = k
			}
		}
		delete(rv.m, oldest)
	}
	rv.m[cookieHash(cookie)] = exp
	b, _ := json.Marshal(rv.m)
	tmp := rv.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, rv.path)
}

// checkSession decodes a session cookie and refuses one ended by logout.
func (a *Auth) checkSession(v string) (session, httpapi.Role, error) {
	s, role, err := a.decodeSession(v, a.o.Clock.Now())
	if err != nil {
		return s, role, err
	}
	if a.revoked.has(v) {
		return session{}, httpapi.Public, errSession
	}
	return s, role, nil
}
