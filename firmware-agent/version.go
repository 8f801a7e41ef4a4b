package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// Stamped at build time by the dist script (-ldflags -X); a plain go build
// from a checkout leaves them empty and agentVersion reads the module
// version and the commit the go command recorded.
var (
	version = ""
	commit  = ""
)

// agentVersion is the version and commit of this binary.
func agentVersion() (string, string) { return versionInfo(version, commit, debug.ReadBuildInfo) }

// versionInfo fills what -ldflags left empty from the build info: the
// module version (a tag, or a pseudo-version of the commit) and the VCS
// revision, marked "+dirty" when the checkout had changes. "dev" only when
// the build recorded neither (go run, a test binary).
func versionInfo(v, c string, read func() (*debug.BuildInfo, bool)) (string, string) {
	bi, ok := read()
	if ok {
		if v == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		if c == "" {
			var rev string
			dirty := false
			for _, s := range bi.Settings {
				switch s.Key {
				case "vcs.revision":
					rev = s.Value
				case "vcs.modified":
					dirty = s.Value == "true"
				}
			}
			if len(rev) > 12 {
				rev = rev[:12]
			}
			if rev != "" && dirty {
				rev += "+dirty"
			}
			c = rev
		}
	}
	if v == "" {
		v = "dev"
	}
	return v, c
}

// versionLine is what version prints.
func versionLine() string {
	version, commit := agentVersion()
	var b strings.Builder
	fmt.Fprintf(&b, "firmware-agent %s", version)
	if commit != "" {
		fmt.Fprintf(&b, " (commit %s)", commit)
	}
	fmt.Fprintf(&b, " %s %s/%s", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return b.String()
}

// statusVersion is the version with its commit, for /api/status and the
// build-info metric ("1.4.0 (5d93b1a0c2e4)").
func statusVersion() string {
	v, c := agentVersion()
	if c != "" {
		return v + " (" + c + ")"
	}
	return v
}
