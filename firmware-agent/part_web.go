package main

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"fieldkit/firmware-agent/config"
	"fieldkit/internal/auth"
	"fieldkit/internal/broker"
	"fieldkit/internal/doctor"
	"fieldkit/internal/health"
	"fieldkit/internal/httpapi"
	"fieldkit/internal/secret"
	"fieldkit/web"
	"fieldkit/web/preflight"
)

// agentToken finds a token for talking to the local agent ("" in the
// open demo). Commands on the box (doctor, scene reload) use the admin
// token: whoever can read the token files already holds every role. Read
// only: a box with no tokens yet gets none made here.
func agentToken(cfg *config.Config) string {
	b, err := os.ReadFile(filepath.Join(cfg.DataDir, auth.TokenDir, httpapi.Admin.String()+".token"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// webParts are the crew page, its login and tokens, and the pre-show
// sign-offs.
type webParts struct {
	preflight  preflightPart
	server     webPart
	authChecks []doctor.Check
	who        func(*http.Request) string
}

type preflightPart struct{ *preflight.Service }

func (preflightPart) Name() string { return "preflight" }

type webPart struct{ *web.Server }

func (webPart) Name() string { return "web" }

// newWeb sets the router's auth and builds the crew page. The pre-show
// gate judges automatic checks given by checks (all but its own manual
// sign-offs), read at each run so that every part's checks count.
func newWeb(cfg *config.Config, p plumbing, rt *httpapi.Router, checks func(manual map[string]bool) []doctor.Check) (*webParts, error) {
	store, created, err := auth.OpenStore(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	if len(created) > 0 {
		p.log.Info("HTTP tokens created; print them with: firmware-agent token show", "dir", filepath.Join(cfg.DataDir, auth.TokenDir))
	}
	tlsOn := cfg.HTTP.TLSCert != ""
	au := auth.New(store, auth.Options{Required: cfg.HTTP.AuthOn(), Secure: tlsOn, Clock: p.clock, Log: p.log})
	rt.SetAuth(au)
	au.Routes(rt)
	if !au.Required() {
		p.log.Warn("HTTP is open: no token needed on loopback (the demo); set http.auth: required to turn tokens on", "listen", cfg.HTTP.Listen)
	}

	var manual map[string]bool
	pf, err := preflight.New(cfg.Preflight, cfg.DataDir, preflight.Deps{
		Checks: func() []doctor.Check { return checks(manual) },
		Bus:    p.bus, Clock: p.clock, Log: p.log, Who: au.Who,
	})
	if err != nil {
		return nil, err
	}
	mc := pf.Checks()
	manual = make(map[string]bool, len(mc))
	for _, c := range mc {
		manual[c.Name] = true
	}
	ws, err := web.New(web.Deps{Auth: au, Handler: rt.Handler, Bus: p.bus, Health: p.health,
		Clock: p.clock, Log: p.log, Box: cfg.Box})
	if err != nil {
		_ = pf.Close()
		return nil, err
	}
	p.health.OnChange(func(health.Part) { pf.Kick() })
	if p.mqtt != nil {
		// The broker check is part of the gate: judge it again as soon as
		// the link is up, not at the next periodic run (the page said
		// "MQTT connected" while the gate still held on "broker").
		p.mqtt.OnConnect(pf.Kick)
	}
	return &webParts{preflight: preflightPart{pf}, server: webPart{ws}, authChecks: au.Checks(cfg.HTTP.Listen, tlsOn), who: au.Who}, nil
}

// wrapTLS serves HTTPS on ln when http.tls_cert and tls_key are set.
func wrapTLS(h config.HTTP, ln net.Listener) (net.Listener, error) {
	if h.TLSCert == "" {
		return ln, nil
	}
	cert, err := tls.LoadX509KeyPair(h.TLSCert, h.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("http.tls_cert/tls_key: %w", err)
	}
	return tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}), nil
}

// brokerOptions are the embedded broker's options: with any account
// configured (always when it listens beyond loopback) every client must
// log in, and wearables are kept to their own cue topics.
func brokerOptions(cfg *config.Config, log *slog.Logger) (broker.Options, error) {
	m := cfg.MQTT
	o := broker.Options{Listen: m.Listen, Log: log}
	if m.Username == "" && len(m.Users) == 0 {
		return o, nil
	}
	var users []broker.User
	if m.Username != "" {
		if m.PasswordFile == "" {
			return o, fmt.Errorf("mqtt.username %q: the embedded broker needs mqtt.password_file too", m.Username)
		}
		pw, err := secret.Read(m.PasswordFile)
		if err != nil {
			return o, fmt.Errorf("mqtt.password_file: %w", err)
		}
		users = append(users, broker.User{Name: m.Username, Password: pw})
	}
	for i, u := range m.Users {
		pw, err := secret.Read(u.PasswordFile)
		if err != nil {
			return o, fmt.Errorf("mqtt.users[%d].password_file: %w", i, err)
		}
		if strings.TrimSpace(pw) == "" {
			return o, fmt.Errorf("mqtt.users[%d].password_file %s is empty", i, u.PasswordFile)
		}
		users = append(users, broker.User{Name: u.Name, Password: pw, Wearable: u.Wearable})
	}
	o.Hook, o.HookConfig = new(broker.AuthHook), &broker.AuthConfig{Users: users, Prefix: m.Prefix}
	return o, nil
}
