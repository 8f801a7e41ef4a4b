package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
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

// The crew page, its login and tokens, and the pre-show sign-offs.
func init() {
	partBuilders = append(partBuilders, buildWeb)
	subcommands["token"] = cmdToken
	agentToken = func(cfg *config.Config) string {
		// Commands on the box (doctor, scene reload) talk to the running
		// agent with the admin token: whoever can read the token files
		// already holds every role.
		s, _, err := auth.OpenStore(cfg.DataDir)
		if err != nil {
			return ""
		}
		tok, _ := s.Token(httpapi.Admin)
		return tok
	}
}

func buildWeb(_ context.Context, a *app) error {
	store, created, err := auth.OpenStore(a.cfg.DataDir)
	if err != nil {
		return err
	}
	if len(created) > 0 {
		a.log.Info("HTTP tokens created; print them with: firmware-agent token show", "dir", filepath.Join(a.cfg.DataDir, auth.TokenDir))
	}
	tlsOn := a.cfg.HTTP.TLSCert != ""
	au := auth.New(store, auth.Options{Required: a.cfg.HTTP.AuthOn(), Secure: tlsOn, Clock: a.clock, Log: a.log})
	a.router.SetAuth(au)
	au.Routes(a.router)
	if !au.Required() {
		a.log.Warn("HTTP is open: no token needed on loopback (the demo); set http.auth: required to turn tokens on", "listen", a.cfg.HTTP.Listen)
	}

	// The gate judges every automatic check, read at each run so that the
	// checks of parts built after this one count too.
	var manual map[string]bool
	pf, err := preflight.New(a.cfg.Preflight, a.cfg.DataDir, preflight.Deps{
		Checks: func() []doctor.Check {
			out := make([]doctor.Check, 0, len(a.checks))
			for _, c := range a.checks {
				if !manual[c.Name] {
					out = append(out, c)
				}
			}
			return out
		},
		Bus: a.bus, Clock: a.clock, Log: a.log, Who: au.Who,
	})
	if err != nil {
		return err
	}
	a.closers = append(a.closers, pf.Close)
	mc := pf.Checks()
	manual = make(map[string]bool, len(mc))
	for _, c := range mc {
		manual[c.Name] = true
	}
	a.checks = append(a.checks, mc...)
	a.checks = append(a.checks, au.Checks(a.cfg.HTTP.Listen, tlsOn)...)
	pf.Routes(a.router)

	ws, err := web.New(web.Deps{Auth: au, Handler: a.router.Handler, Bus: a.bus, Health: a.health,
		Clock: a.clock, Log: a.log, Box: a.cfg.Box})
	if err != nil {
		return err
	}
	ws.Routes(a.router)
	a.health.OnChange(func(health.Part) { pf.Kick() })
	a.addPart("preflight", false, pf.Run)
	a.addPart("web", false, ws.Run)
	return nil
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
