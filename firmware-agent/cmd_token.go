package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"path/filepath"

	"fieldkit/internal/auth"
	"fieldkit/internal/httpapi"
)

// cmdToken prints or rotates the HTTP tokens:
//
//	firmware-agent token show [--config FILE] [--data DIR]
//	firmware-agent token rotate crew|admin [--config FILE] [--data DIR]
//
// The tokens are files (mode 0600) under the data dir, so only the
// agent's user (or root) can print them. A running agent picks a rotated
// token up at once; the old one's sessions end.
func cmdToken(_ context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "show" && args[0] != "rotate") {
		return fmt.Errorf("%w: token show | token rotate crew|admin", errUsage)
	}
	verb, args := args[0], args[1:]
	var role httpapi.Role
	if verb == "rotate" {
		if len(args) == 0 {
			return fmt.Errorf("%w: token rotate crew|admin", errUsage)
		}
		switch args[0] {
		case "crew":
			role = httpapi.Crew
		case "admin":
			role = httpapi.Admin
		default:
			return fmt.Errorf("%w: token rotate: unknown role %q (crew or admin)", errUsage, args[0])
		}
		args = args[1:]
	}
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f runFlags
	fs.StringVar(&f.config, "config", "", "config file (default: "+defaultConfig+" when present, else the built-in demo)")
	fs.StringVar(&f.data, "data", "", "data directory (overrides data_dir)")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	cfg, err := f.loadBox()
	if err != nil {
		return err
	}
	s, created, err := auth.OpenStore(cfg.DataDir)
	if err != nil {
		return err
	}
	if verb == "rotate" {
		tok, err := s.Rotate(role)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "new %s token: %s\n(sessions logged in with the old one have ended)\n", role, tok)
		return nil
	}
	if len(created) > 0 {
		fmt.Fprintf(stdout, "(tokens created now in %s)\n", filepath.Dir(s.Path(httpapi.Crew)))
	}
	for _, r := range []httpapi.Role{httpapi.Crew, httpapi.Admin} {
		tok, err := s.Token(r)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%-5s  %s\n", r, tok)
	}
	fmt.Fprintf(stdout, "(config: %s)\n", cfgName(cfg))
	if !cfg.HTTP.AuthOn() {
		fmt.Fprintf(stdout, "note: http on %s is open (loopback): tokens are not asked for until http.auth: required or a venue address\n", cfg.HTTP.Listen)
	}
	return nil
}
