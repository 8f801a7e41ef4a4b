package main

import (
	"bytes"
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"testing"

	"fieldkit/battery"
	"fieldkit/battery/source/sim"
	"fieldkit/firmware-agent/config"
	"fieldkit/internal/mqtttest"
)

// listTree returns every path under dir (nil when dir does not exist).
func listTree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		out = append(out, p)
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return out
}

// boxConfig is an installed box's config with every part that has an
// offline check, on free loopback ports where no agent answers.
func boxConfig(t *testing.T, dataDir string) string {
	t.Helper()
	return writeConfig(t, `box: box1
board: sim
data_dir: `+dataDir+`
http:
  listen: `+mqtttest.FreePort(t)+`
  auth: required
mqtt:
  listen: `+mqtttest.FreePort(t)+`
printers:
  counter: {language: escpos, transport: fake}
batteries:
  - {name: pack, source: sim, preset: vmount-14v}
receipts:
  pickup_printer: counter
`)
}

// doctor with the agent stopped reads the box's config and changes
// nothing on disk: a fresh data dir stays empty, a missing one is not
// made, and no ledger, key or token appears.
func TestDoctorChangesNothingOnDisk(t *testing.T) {
	for _, c := range []struct {
		name   string
		exists bool
	}{{"fresh data dir", true}, {"no data dir yet", false}} {
		t.Run(c.name, func(t *testing.T) {
			dataDir := filepath.Join(t.TempDir(), "data")
			if c.exists {
				if err := os.Mkdir(dataDir, 0o750); err != nil {
					t.Fatal(err)
				}
			}
			cfg := boxConfig(t, dataDir)
			before := listTree(t, dataDir)
			var out, errb bytes.Buffer
			code := cli(context.Background(), []string{"doctor", "--config", cfg}, &out, &errb)
			after := listTree(t, dataDir)
			if !slices.Equal(before, after) {
				t.Fatalf("doctor changed the data dir: before %q, after %q\n%s", before, after, out.String())
			}
			if code != 0 {
				t.Fatalf("doctor: exit %d\n%s%s", code, out.String(), errb.String())
			}
			if strings.Contains(out.String(), "(close)") {
				t.Fatalf("doctor printed a cleanup step as a check:\n%s", out.String())
			}
			for _, want := range []string{"checked from the config, " + cfg, "data dir", "receipts: no ledger yet", "batteries"} {
				if !strings.Contains(out.String(), want) {
					t.Fatalf("doctor output lacks %q:\n%s", want, out.String())
				}
			}
		})
	}
}

// With no --config, doctor and token show read /etc/fieldkit/agent.yaml
// when it exists: token show --data DIR (the README's install line) says
// nothing about an open loopback demo on a box that requires tokens.
func TestCommandsReadTheBoxConfig(t *testing.T) {
	dataDir := t.TempDir()
	cfg := boxConfig(t, dataDir)
	old := defaultConfig
	defaultConfig = cfg
	t.Cleanup(func() { defaultConfig = old })

	var out, errb bytes.Buffer
	if code := cli(context.Background(), []string{"doctor"}, &out, &errb); code != 0 || !strings.Contains(out.String(), cfg) {
		t.Fatalf("doctor with no --config: exit %d, want it to name %s\n%s%s", code, cfg, out.String(), errb.String())
	}
	out.Reset()
	other := t.TempDir()
	if code := cli(context.Background(), []string{"token", "show", "--data", other}, &out, &errb); code != 0 {
		t.Fatalf("token show: %s", errb.String())
	}
	crew, admin := readTokens(t, other)
	if !strings.Contains(out.String(), "crew   "+crew) || !strings.Contains(out.String(), "admin  "+admin) || !strings.Contains(out.String(), "(config: "+cfg+")") {
		t.Fatalf("token show --data printed:\n%s", out.String())
	}
	if strings.Contains(out.String(), "open") {
		t.Fatalf("token show calls a box that requires tokens open:\n%s", out.String())
	}

	// No box config: the demo, which is open on loopback, and says so.
	defaultConfig = filepath.Join(t.TempDir(), "absent.yaml")
	out.Reset()
	if code := cli(context.Background(), []string{"token", "show", "--data", t.TempDir()}, &out, &errb); code != 0 || !strings.Contains(out.String(), "is open (loopback)") {
		t.Fatalf("token show for the demo: exit %d\n%s", code, out.String())
	}
}

// --help names every subcommand dispatch knows (read from its source, so
// a new subcommand without a help line fails here).
func TestHelpListsEverySubcommand(t *testing.T) {
	var out, errb bytes.Buffer
	if code := cli(context.Background(), []string{"--help"}, &out, &errb); code != 0 {
		t.Fatalf("--help: exit %d", code)
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "cli.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	ast.Inspect(f, func(n ast.Node) bool {
		if fd, ok := n.(*ast.FuncDecl); ok && fd.Name.Name != "dispatch" {
			return false
		}
		if cc, ok := n.(*ast.CaseClause); ok {
			for _, e := range cc.List {
				if lit, ok := e.(*ast.BasicLit); ok {
					if name, _ := strconv.Unquote(lit.Value); !strings.HasPrefix(name, "-") {
						names = append(names, name)
					}
				}
			}
		}
		return true
	})
	if len(names) < 8 {
		t.Fatalf("found only %q in dispatch", names)
	}
	for _, n := range names {
		if n == "config" {
			n = "config check"
		}
		if !strings.Contains(out.String(), "firmware-agent "+n+" ") && !strings.Contains(out.String(), "firmware-agent "+n+"\n") {
			t.Errorf("--help does not list %q:\n%s", n, out.String())
		}
	}
}

// version reports what the build recorded: the go command's module
// version and commit for a build from a checkout, the dist script's
// stamp otherwise.
func TestVersionInfo(t *testing.T) {
	bi := func(v string, settings ...string) func() (*debug.BuildInfo, bool) {
		return func() (*debug.BuildInfo, bool) {
			b := &debug.BuildInfo{Main: debug.Module{Path: "fieldkit", Version: v}}
			for i := 0; i+1 < len(settings); i += 2 {
				b.Settings = append(b.Settings, debug.BuildSetting{Key: settings[i], Value: settings[i+1]})
			}
			return b, true
		}
	}
	for _, c := range []struct {
		name, v, c  string
		read        func() (*debug.BuildInfo, bool)
		wantV, want string
	}{
		{"go build in a checkout", "", "", bi("v0.0.0-20261202070649-ed9f7e7ac31e", "vcs.revision", "ed9f7e7ac31ebdc0b161eb3edbba3267fb60fc01", "vcs.modified", "false"),
			"v0.0.0-20261202070649-ed9f7e7ac31e", "ed9f7e7ac31e"},
		{"with local changes", "", "", bi("(devel)", "vcs.revision", "ed9f7e7ac31ebdc0b161eb3edbba3267fb60fc01", "vcs.modified", "true"),
			"dev", "ed9f7e7ac31e+dirty"},
		{"dist.sh stamp wins", "1.4.0", "0123456789ab", bi("(devel)", "vcs.revision", "ffffffffffffffff"), "1.4.0", "0123456789ab"},
		{"nothing recorded", "", "", func() (*debug.BuildInfo, bool) { return nil, false }, "dev", ""},
	} {
		v, cm := versionInfo(c.v, c.c, c.read)
		if v != c.wantV || cm != c.want {
			t.Errorf("%s: got %q %q, want %q %q", c.name, v, cm, c.wantV, c.want)
		}
	}
}

// A binary built as scripts/dist.sh builds it prints the stamped version
// and commit.
func TestVersionStampedByDist(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "firmware-agent")
	cmd := exec.Command("go", "build", "-o", bin, "-ldflags", "-X main.version=1.4.0+git5d93b1a -X main.commit=5d93b1a0c2e4", ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "firmware-agent 1.4.0+git5d93b1a (commit 5d93b1a0c2e4) go") {
		t.Fatalf("version: %v\n%s", err, out)
	}
}

// The demo's pack is the battery package's DemoConfig, whose drain the
// battery tests time: 40 % lasting 20 minutes.
func TestDemoBatteryIsTheTestedOne(t *testing.T) {
	cfg, err := config.Parse("demo.yaml", demoYAML)
	if err != nil {
		t.Fatal(err)
	}
	want := battery.DemoConfig()[0]
	if len(cfg.Batteries) != 1 {
		t.Fatalf("demo batteries %+v", cfg.Batteries)
	}
	got := cfg.Batteries[0]
	gs, _ := got.Settings.(*sim.Config)
	ws, _ := want.Settings.(*sim.Config)
	if gs == nil || ws == nil || got.Name != want.Name || *gs != *ws || got.Preset != want.Preset {
		t.Fatalf("demo.yaml pack %+v, battery.DemoConfig %+v", got, want)
	}
}
