package floors

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "fieldkit"

// Floors, lowest first.
const (
	floorInternal = iota
	floorBoards
	floorDrivers
	floorParts
	floorTop
)

// floorOf is the floor of a package by its first path element under the
// module; a new top-level directory must be given one here.
func floorOf(path string) (int, bool) {
	rel := strings.TrimPrefix(path, module+"/")
	first, _, _ := strings.Cut(rel, "/")
	switch first {
	case "internal":
		return floorInternal, true
	case "boards":
		return floorBoards, true
	case "drivers":
		return floorDrivers, true
	case "scenes", "printer", "sync", "web", "battery", "venue":
		return floorParts, true
	case "firmware-agent", "bench", "systemd":
		return floorTop, true
	}
	return 0, false
}

// part is the part a package belongs to (its first path element).
func part(path string) string {
	first, _, _ := strings.Cut(strings.TrimPrefix(path, module+"/"), "/")
	return first
}

// transports are what drivers must not import: a driver declares the
// interfaces it needs, and the agent passes the transport in.
var transports = []string{
	module + "/internal/mqttc",
	module + "/internal/bus",
	module + "/internal/httpapi",
	module + "/internal/doctor",
}

type pkg struct {
	ImportPath   string
	Imports      []string
	TestImports  []string
	XTestImports []string
}

// violations lists every import that breaks a rule: none goes up a
// floor, no part's code imports another part, no driver imports a
// transport.
func violations(pkgs []pkg) []string {
	var out []string
	for _, p := range pkgs {
		from, ok := floorOf(p.ImportPath)
		if !ok {
			out = append(out, fmt.Sprintf("%s: no floor for this directory; give it one in floorOf", p.ImportPath))
			continue
		}
		// A part's tests may use another part's test doubles (a fake
		// printer behind the ledger's crash test), but never a higher floor.
		check := func(imps []string, what string) {
			for _, imp := range imps {
				if !strings.HasPrefix(imp, module+"/") {
					continue
				}
				to, ok := floorOf(imp)
				if !ok {
					continue // reported for the package itself
				}
				switch {
				case to > from:
					out = append(out, fmt.Sprintf("%s%s imports %s, on a higher floor", p.ImportPath, what, imp))
				case what == "" && to == floorParts && from == floorParts && part(imp) != part(p.ImportPath):
					out = append(out, fmt.Sprintf("%s%s imports %s, another part", p.ImportPath, what, imp))
				}
			}
		}
		check(p.Imports, "")
		check(p.TestImports, " (test)")
		check(p.XTestImports, " (external test)")
		if from == floorDrivers {
			for _, imp := range p.Imports {
				if slices.Contains(transports, imp) {
					out = append(out, fmt.Sprintf("%s imports %s: a driver declares the interface it needs instead", p.ImportPath, imp))
				}
			}
		}
	}
	return out
}

func listModule(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-e", "-json=ImportPath,Imports,TestImports,XTestImports", "./...")
	cmd.Dir = "../.."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(b))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 20 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	return pkgs
}

func TestImportsRunOneWay(t *testing.T) {
	for _, v := range violations(listModule(t)) {
		t.Error(v)
	}
}

// The rules themselves catch what they are for.
func TestViolations(t *testing.T) {
	for _, tc := range []struct {
		p    pkg
		want string
	}{
		{pkg{ImportPath: "fieldkit/internal/config", Imports: []string{"fieldkit/scenes"}}, "on a higher floor"},
		{pkg{ImportPath: "fieldkit/boards", Imports: []string{"fieldkit/drivers/cue"}}, "on a higher floor"},
		{pkg{ImportPath: "fieldkit/drivers/outputs", XTestImports: []string{"fieldkit/firmware-agent/config"}}, "(external test) imports fieldkit/firmware-agent/config, on a higher floor"},
		{pkg{ImportPath: "fieldkit/sync/uplink", Imports: []string{"fieldkit/printer/service"}}, "another part"},
		{pkg{ImportPath: "fieldkit/drivers/button", Imports: []string{"fieldkit/internal/bus"}}, "declares the interface"},
		{pkg{ImportPath: "fieldkit/tools/x"}, "no floor"},
	} {
		vs := violations([]pkg{tc.p})
		if len(vs) != 1 || !strings.Contains(vs[0], tc.want) {
			t.Errorf("%+v: %q, want one containing %q", tc.p, vs, tc.want)
		}
	}
	ok := []pkg{
		{ImportPath: "fieldkit/sync/uplink", Imports: []string{"fieldkit/sync/wire", "fieldkit/internal/secret"}},
		{ImportPath: "fieldkit/drivers/mqttdev", Imports: []string{"fieldkit/drivers/cue", "fieldkit/internal/clock"}, TestImports: []string{"fieldkit/internal/mqttc"}},
		{ImportPath: "fieldkit/firmware-agent", Imports: []string{"fieldkit/scenes", "fieldkit/battery"}},
		{ImportPath: "fieldkit/sync/receipts", XTestImports: []string{"fieldkit/printer/fake"}},
	}
	if vs := violations(ok); len(vs) > 0 {
		t.Errorf("false alarms: %q", vs)
	}
}
