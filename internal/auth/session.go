package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"fieldkit/internal/httpapi"
)

// CookieName is the session cookie.
const CookieName = "fieldkit_session"

// session is what the cookie carries, signed with a key derived from the
// role's token. Nothing is kept on the server, so a session survives a
// restart of the agent, and rotating the token ends every session of
// that role.
type session struct {
	Role string `json:"r"`
	Name string `json:"n,omitempty"`
	Exp  int64  `json:"e"`
}

var errSession = errors.New("session expired or invalid; log in again")

func roleByName(s string) (httpapi.Role, bool) {
	for _, r := range tokenRoles {
		if r.String() == s {
			return r, true
		}
	}
	return httpapi.Public, false
}

func sign(key []byte, payload string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (a *Auth) encodeSession(s session) (string, error) {
	role, _ := roleByName(s.Role)
	key, err := a.store.key(role)
	if err != nil {
		return "", err
	}
	b, _ := json.Marshal(s)
	p := base64.RawURLEncoding.EncodeToString(b)
	return p + "." + sign(key, p), nil
}

func (a *Auth) decodeSession(v string, now time.Time) (session, httpapi.Role, error) {
	p, mac, ok := strings.Cut(v, ".")
	if !ok || len(v) > 1024 {
		return session{}, 0, errSession
	}
	b, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil {
		return session{}, 0, errSession
	}
	var s session
	if err := json.Unmarshal(b, &s); err != nil {
		return session{}, 0, errSession
	}
	role, ok := roleByName(s.Role)
	if !ok {
		return session{}, 0, errSession
	}
	key, err := a.store.key(role)
	if err != nil {
		return session{}, 0, err
	}
	if !hmac.Equal([]byte(mac), []byte(sign(key, p))) {
		return session{}, 0, errSession
	}
	if now.Unix() >= s.Exp {
		return session{}, 0, errSession
	}
	return s, role, nil
}
