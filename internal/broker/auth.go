package broker

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"

	tp "fieldkit/internal/topic"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// User is an account on the embedded broker.
type User struct {
	Name     string
	Password string
	// Wearable keeps the user to <prefix>/cue/<wearable>/#, reading and
	// writing; "" is full access (the agent, the venue's own systems).
	Wearable string
}

// AuthConfig is the HookConfig for an AuthHook.
type AuthConfig struct {
	Users []User
	// Prefix is the box's topic prefix (fieldkit/<box>).
	Prefix string
}

// AuthHook admits only the configured users, each password compared in
// constant time, and keeps wearable users to their own cue topics. Use it
// whenever the broker is reachable from beyond the box.
type AuthHook struct {
	mqtt.HookBase
	users  map[string]User
	prefix string
}

// ID names the hook.
func (h *AuthHook) ID() string { return "fieldkit-auth" }

// Provides says the hook decides on connects and topic access.
func (h *AuthHook) Provides(b byte) bool {
	return b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck
}

// Init takes an *AuthConfig.
func (h *AuthHook) Init(config any) error {
	c, ok := config.(*AuthConfig)
	if !ok || c == nil {
		return mqtt.ErrInvalidConfigType
	}
	if len(c.Users) == 0 {
		return errors.New("no users: an authenticating broker with no account would refuse everyone")
	}
	if c.Prefix == "" || strings.ContainsAny(c.Prefix, "+#") {
		return fmt.Errorf("topic prefix %q: expected e.g. fieldkit/box1", c.Prefix)
	}
	h.users, h.prefix = map[string]User{}, c.Prefix
	for _, u := range c.Users {
		if u.Name == "" || u.Password == "" {
			return fmt.Errorf("user %q: name and password are both required", u.Name)
		}
		if _, dup := h.users[u.Name]; dup {
			return fmt.Errorf("user %q listed twice", u.Name)
		}
		if strings.ContainsAny(u.Wearable, "/+#") {
			return fmt.Errorf("user %q: wearable %q may not hold '/', '+' or '#'", u.Name, u.Wearable)
		}
		h.users[u.Name] = u
	}
	return nil
}

// OnConnectAuthenticate admits a known user with the right password.
// Hashing both sides first makes the comparison constant-time whatever
// the lengths.
func (h *AuthHook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	u, ok := h.users[string(pk.Connect.Username)]
	want := sha256.Sum256([]byte(u.Password))
	got := sha256.Sum256(pk.Connect.Password)
	match := subtle.ConstantTimeCompare(want[:], got[:]) == 1
	if !ok || !match {
		h.Log.Warn("mqtt: login refused", "user", string(pk.Connect.Username), "client", cl.ID, "remote", cl.Net.Remote)
		return false
	}
	return true
}

// OnACLCheck allows full users everything, and a wearable user only
// topics (or filters) inside its own cue subtree.
func (h *AuthHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	u, ok := h.users[string(cl.Properties.Username)]
	if !ok {
		return false
	}
	if u.Wearable == "" {
		return true
	}
	if WearableAllowed(h.prefix, u.Wearable, topic) {
		return true
	}
	h.Log.Warn("mqtt: topic refused to wearable", "user", u.Name, "topic", topic, "write", write)
	return false
}

// WearableAllowed reports whether a topic name or filter stays inside
// <prefix>/cue/<wearable>/. A wildcard may only appear below that level,
// so no filter can reach another wearable's topics.
func WearableAllowed(prefix, wearable, topic string) bool {
	rest, ok := strings.CutPrefix(topic, tp.Under(prefix, tp.WearableBase(wearable))+"/")
	return ok && rest != ""
}
