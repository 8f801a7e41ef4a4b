package main

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"fieldkit/boards"
	"fieldkit/drivers/outputs"
	"fieldkit/firmware-agent/config"
	"fieldkit/internal/mqtttest"
	"fieldkit/sync/receipts"
)

// The agent built from the show config (the README's example, on the sim
// board, with one output of every kind) has every part, and every
// dependency between parts reaches the part that needs it: the ledger's
// sales reach the pickup labels on the configured printer, and the scene
// engine drives every output kind.
func TestShowConfigWiring(t *testing.T) {
	cfgText, _, etc := readmeExamples(t)
	cfgText = strings.Replace(cfgText, "\nboard: auto", "\nboard: sim", 1)
	// The README shows nine of the kinds; the one it leaves out joins here.
	strip := "\n  strip:     {kind: ws2812"
	if !strings.Contains(cfgText, strip) {
		t.Fatal("the README example lost its ws2812 strip")
	}
	cfgText = strings.Replace(cfgText, strip, "\n  strip2:    {kind: apa102, spi: \"0.1\", leds: 8}"+strip, 1)
	cfg, err := config.Parse("README.md", []byte(cfgText))
	if err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = t.TempDir()
	cfg.HTTP.Listen = mqtttest.FreePort(t)

	// One scene that asks something of every output.
	names := make([]string, 0, len(cfg.Cues.Outputs))
	for n := range cfg.Cues.Outputs {
		names = append(names, n)
	}
	sort.Strings(names)
	var scene strings.Builder
	scene.WriteString("name: every-output\nsteps:\n")
	for _, n := range names {
		switch cfg.Cues.Outputs[n].Kind {
		case "drv2605", "wearable", "pwm":
			fmt.Fprintf(&scene, "  - {at: 0s, target: %s, do: haptic, pattern: short}\n", n)
		default:
			fmt.Fprintf(&scene, "  - {at: 0s, target: %s, do: \"on\"}\n", n)
		}
	}
	if err := os.WriteFile(filepath.Join(etc, "scenes", "every-output.yaml"), []byte(scene.String()), 0o644); err != nil {
		t.Fatal(err)
	}

	// The sim board with the haptic driver chip on I2C bus 1.
	board := boards.NewSim(cfg.Pins)
	board.Bus("1").Attach(0x5a, &simRegs{regs: map[byte][]byte{0x00: {7 << 5}}})
	a, err := build(cfg, discardLogger(), board)
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()

	var got []string
	for _, p := range a.parts {
		got = append(got, p.Name())
	}
	for _, want := range []string{"mqtt", "mqtt-mirror", "button reprint", "battery", "printers", "pickup-labels",
		"receipts", "receipts-uplink", "scenes", "preflight", "web"} {
		if !slices.Contains(got, want) {
			t.Errorf("part %q was not built; parts: %v", want, got)
		}
	}

	// Every output kind is built, and the scene engine was given them all.
	kinds := map[string]bool{}
	for _, tg := range a.targets {
		kinds[tg.Kind()] = true
	}
	for _, k := range outputs.Kinds {
		if !kinds[k] {
			t.Errorf("no output of kind %s was built", k)
		}
	}
	st, _ := a.scenes.Status().(map[string]any)
	if le, _ := st["load_error"].(string); le != "" {
		t.Fatalf("the scene over every output did not load: %s", le)
	}
	if !strings.Contains(fmt.Sprint(st["scenes"]), "every-output") {
		t.Fatalf("scene every-output not loaded: %v", st)
	}
	checkSceneTargets(t, a, names)

	// A sale committed to the ledger leaves a label request for the
	// pickup labels of the configured printer, which is the printers
	// part's own service.
	if a.pickup == nil || a.printers == nil {
		t.Fatalf("pickup labels %v, printers %v: not wired", a.pickup, a.printers)
	}
	if a.pickup.svc != a.printers || a.pickup.printer != cfg.Receipts.PickupPrinter {
		t.Fatalf("pickup labels print on %q of %p, want %q of %p", a.pickup.printer, a.pickup.svc, cfg.Receipts.PickupPrinter, a.printers)
	}
	var rs receiptsPart
	for _, p := range a.parts {
		if r, ok := p.(receiptsPart); ok {
			rs = r
		}
	}
	if rs.Service == nil {
		t.Fatal("no receipts part")
	}
	_, _, err = rs.Append(t.Context(), receipts.Order{ClientID: "pos1-1", Order: "A-1", Currency: "EUR", Pay: "card", Total: 500,
		Items: []receipts.Item{{SKU: "TEE", Qty: 1, Price: 500}}})
	if err != nil {
		t.Fatal(err)
	}
	// The sale's label request is in the ledger's outbox that the pickup
	// labels drain (committed with the sale).
	if len(a.pickup.sources) != 2 || a.pickup.sources[0].l != rs.Ledger() || a.pickup.sources[0].rehearsal ||
		a.pickup.sources[1].l != rs.RehearsalLedger() || !a.pickup.sources[1].rehearsal {
		t.Fatal("pickup labels drain another ledger")
	}
	pend, err := rs.Ledger().PendingLabels(t.Context(), 10)
	if err != nil || len(pend) != 1 || !strings.Contains(pend[0].Record, `"order":"A-1"`) {
		t.Fatalf("label outbox after a sale: %v %v", pend, err)
	}

	// The capabilities of each part are plugged in: its status section,
	// its reload hook, its routes.
	for _, sec := range []string{"outputs", "batteries", "printers", "receipts", "scenes"} {
		if a.status[sec] == nil {
			t.Errorf("no %s section in /api/status", sec)
		}
	}
	if len(a.reload) != 1 {
		t.Errorf("%d reload hooks, want the scene engine's", len(a.reload))
	}
}

// simRegs is an I2C device that is a file of registers: a write of
// [reg, bytes...] stores the bytes, a write of [reg] and a read returns
// them (zeros when never written).
type simRegs struct {
	mu   sync.Mutex
	regs map[byte][]byte
}

func (d *simRegs) Tx(w, r []byte) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(w) == 0 {
		return errors.New("simRegs: no register given")
	}
	if len(w) > 1 {
		d.regs[w[0]] = slices.Clone(w[1:])
	}
	clear(r)
	copy(r, d.regs[w[0]])
	return nil
}

// checkSceneTargets checks that each output the scene names is in the
// map newApp gave the scene engine (its load already checked each step).
func checkSceneTargets(t *testing.T, a *app, names []string) {
	t.Helper()
	for _, n := range names {
		if _, ok := a.targets[n]; !ok {
			t.Errorf("output %s missing from the scene engine's targets", n)
		}
	}
}

// Nothing in the agent registers itself: no init functions, and no
// package-level variable is changed after its declaration, so what the
// agent builds and runs cannot depend on the order of its files.
func TestNoFileOrderDependence(t *testing.T) {
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var parsed []*ast.File
	pkgVars := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		parsed = append(parsed, af)
		for _, d := range af.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Name.Name == "init" && d.Recv == nil {
					t.Errorf("%s: func init: build parts in newApp instead", fset.Position(d.Pos()))
				}
			case *ast.GenDecl:
				if d.Tok != token.VAR {
					continue
				}
				for _, sp := range d.Specs {
					for _, n := range sp.(*ast.ValueSpec).Names {
						pkgVars[n.Name] = true
					}
				}
			}
		}
	}
	for _, af := range parsed {
		for _, d := range af.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Body == nil {
				continue
			}
			locals := localNames(fd)
			ast.Inspect(fd.Body, func(n ast.Node) bool {
				var lhs []ast.Expr
				switch n := n.(type) {
				case *ast.AssignStmt:
					if n.Tok != token.DEFINE {
						lhs = n.Lhs
					}
				case *ast.IncDecStmt:
					lhs = []ast.Expr{n.X}
				}
				for _, e := range lhs {
					for {
						switch x := e.(type) {
						case *ast.IndexExpr:
							e = x.X
							continue
						case *ast.ParenExpr:
							e = x.X
							continue
						}
						break
					}
					if id, ok := e.(*ast.Ident); ok && pkgVars[id.Name] && !locals[id.Name] {
						t.Errorf("%s: package variable %s is set in %s", fset.Position(id.Pos()), id.Name, fd.Name.Name)
					}
				}
				return true
			})
		}
	}
}

// localNames are the names a function declares (parameters, results,
// := and var), which shadow package variables of the same name.
func localNames(fd *ast.FuncDecl) map[string]bool {
	m := map[string]bool{}
	add := func(fl *ast.FieldList) {
		if fl == nil {
			return
		}
		for _, f := range fl.List {
			for _, n := range f.Names {
				m[n.Name] = true
			}
		}
	}
	add(fd.Recv)
	add(fd.Type.Params)
	add(fd.Type.Results)
	ast.Inspect(fd.Body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.AssignStmt:
			if n.Tok == token.DEFINE {
				for _, e := range n.Lhs {
					if id, ok := e.(*ast.Ident); ok {
						m[id.Name] = true
					}
				}
			}
		case *ast.ValueSpec:
			for _, id := range n.Names {
				m[id.Name] = true
			}
		case *ast.FuncLit:
			add(n.Type.Params)
			add(n.Type.Results)
		case *ast.RangeStmt:
			if n.Tok == token.DEFINE {
				for _, e := range []ast.Expr{n.Key, n.Value} {
					if id, ok := e.(*ast.Ident); ok {
						m[id.Name] = true
					}
				}
			}
		}
		return true
	})
	return m
}
