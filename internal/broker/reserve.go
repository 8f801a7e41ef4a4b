package broker

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"log/slog"
	"slices"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Reserved is a client id only one account may use: the agent's own
// "fieldkit-<box>". MQTT lets a new connection with an existing client id
// take the session over, so without this any account (a wearable, a venue
// script) could knock the agent off its own broker.
type Reserved struct {
	ClientID string
	// Others are further client ids of the agent's own (its venue
	// connection), kept to the same account.
	Others   []string
	Username string
	Password string
}

func (r Reserved) has(id string) bool { return id == r.ClientID || slices.Contains(r.Others, id) }

// reserveHook guards the reserved client id and otherwise defers to the
// hook it wraps. It wraps rather than sits beside that hook because mochi
// admits a connection when any one hook says yes.
type reserveHook struct {
	mqtt.HookBase
	inner mqtt.Hook
	r     Reserved
	want  [sha256.Size]byte
}

func newReserveHook(inner mqtt.Hook, r Reserved) (*reserveHook, error) {
	if r.ClientID == "" || r.Username == "" || r.Password == "" {
		return nil, errors.New("reserved client id: client id, username and password are all required")
	}
	return &reserveHook{inner: inner, r: r, want: sha256.Sum256([]byte(r.Password))}, nil
}

func (h *reserveHook) ID() string { return "fieldkit-reserve" }

func (h *reserveHook) Provides(b byte) bool {
	return b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck
}

func (h *reserveHook) SetOpts(l *slog.Logger, o *mqtt.HookOptions) {
	h.HookBase.SetOpts(l, o)
	h.inner.SetOpts(l, o)
}

func (h *reserveHook) Init(config any) error { return h.inner.Init(config) }

func (h *reserveHook) Stop() error { return h.inner.Stop() }

// OnConnectAuthenticate admits the reserved client id only with the
// agent's account; every other client id is the wrapped hook's call.
func (h *reserveHook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	if h.r.has(cl.ID) {
		got := sha256.Sum256(pk.Connect.Password)
		if string(pk.Connect.Username) == h.r.Username && subtle.ConstantTimeCompare(h.want[:], got[:]) == 1 {
			return true
		}
		h.Log.Warn("mqtt: refused a connection using the agent's own client id; it is reserved for the agent",
			"client", cl.ID, "user", string(pk.Connect.Username), "remote", cl.Net.Remote)
		return false
	}
	if h.inner.Provides(mqtt.OnConnectAuthenticate) {
		return h.inner.OnConnectAuthenticate(cl, pk)
	}
	return false
}

// OnACLCheck: the agent's own account may do anything; others are the
// wrapped hook's call.
func (h *reserveHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	if h.r.has(cl.ID) && string(cl.Properties.Username) == h.r.Username {
		return true
	}
	if h.inner.Provides(mqtt.OnACLCheck) {
		return h.inner.OnACLCheck(cl, topic, write)
	}
	return false
}
