package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"fieldkit/internal/auth"
	"fieldkit/internal/httpapi"
	"fieldkit/internal/mqtttest"
)

// route is one HandleFunc/Handle call found in the module's source.
type route struct {
	Pattern string
	Role    httpapi.Role
	Where   string
}

// registeredRoutes finds every route registration with a literal pattern
// and role in the module's (non-test) source: the routes the agent's
// router can serve, whichever parts are wired in.
func registeredRoutes(t *testing.T) []route {
	t.Helper()
	roles := map[string]httpapi.Role{"Public": httpapi.Public, "Crew": httpapi.Crew, "Admin": httpapi.Admin}
	seen := map[string]route{}
	fset := token.NewFileSet()
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && path != ".." || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return nil // a file mid-edit by someone else
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) < 3 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || (sel.Sel.Name != "Handle" && sel.Sel.Name != "HandleFunc") {
				return true
			}
			lit, ok := call.Args[0].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			var roleName string
			switch r := call.Args[1].(type) {
			case *ast.SelectorExpr:
				roleName = r.Sel.Name
			case *ast.Ident:
				roleName = r.Name
			}
			role, ok := roles[roleName]
			if !ok {
				return true
			}
			p, _ := strconv.Unquote(lit.Value)
			seen[p] = route{Pattern: p, Role: role, Where: fset.Position(call.Pos()).String()}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]route, 0, len(seen))
	for _, r := range seen {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Pattern < out[j].Pattern })
	return out
}

var wildRE = regexp.MustCompile(`\{[^}]*\}`)

// concrete turns "POST /api/x/{name}/run" into a method and a path with
// a placeholder that names nothing real, so allowed calls change little.
func concrete(pattern string) (method, path string) {
	method, path, ok := strings.Cut(pattern, " ")
	if !ok {
		method, path = "GET", pattern
	}
	path = wildRE.ReplaceAllStringFunc(path, func(w string) string {
		switch w {
		case "{$}":
			return ""
		case "{file}":
			return "app.css"
		}
		return "zz-no-such"
	})
	return method, path
}

func readTokens(t *testing.T, dataDir string) (crew, admin string) {
	t.Helper()
	s, _, err := auth.OpenStore(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	crew, _ = s.Token(httpapi.Crew)
	admin, _ = s.Token(httpapi.Admin)
	return crew, admin
}

// startSecured runs the agent with tokens required on loopback.
func startSecured(t *testing.T, extra string) (p *agentProc, dataDir string) {
	t.Helper()
	dataDir = t.TempDir()
	cfg := writeConfig(t, "box: show1\nboard: sim\ndata_dir: "+dataDir+"\nhttp:\n  auth: required\n"+extra)
	httpAddr := mqtttest.FreePort(t)
	cmd := exec.Command(agentBin, "run", "--config", cfg, "--http", httpAddr, "--mqtt-listen", mqtttest.FreePort(t))
	p = &agentProc{cmd: cmd, http: httpAddr, log: &syncBuf{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = p.log, p.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("agent log:\n%s", p.log.String())
		}
	})
	p.waitHealthy(t, 10*time.Second)
	return p, dataDir
}

type answer struct {
	code int
	body string
	www  bool
}

func call(t *testing.T, method, url, bearer string) answer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, method, url, nil)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	var b []byte
	if resp.Header.Get("Content-Type") != "text/event-stream" {
		b, _ = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	}
	return answer{resp.StatusCode, string(b), resp.Header.Get("WWW-Authenticate") != ""}
}

// refused reports whether the router's guard turned the call away.
func (a answer) refused() bool {
	return (a.code == http.StatusUnauthorized && a.www) || (a.code == http.StatusForbidden && strings.Contains(a.body, "this needs the"))
}

// Every registered route, called with no token, a wrong token, the crew
// token and the admin token: the guard lets exactly the roles through
// that the route asks for.
func TestRolesPerRoute(t *testing.T) {
	p, dataDir := startSecured(t, showConfig(t, demoBattery))
	base := "http://" + p.http
	routes := registeredRoutes(t)
	if len(routes) < 15 {
		t.Fatalf("found only %d routes in the source; the scan is broken", len(routes))
	}
	served := 0
	for _, r := range routes {
		method, path := concrete(r.Pattern)
		// Tokens are read afresh: a route may rotate them.
		crew, admin := readTokens(t, dataDir)
		none := call(t, method, base+path, "")
		adm := call(t, method, base+path, admin)
		if r.Role != httpapi.Public && none.code == http.StatusNotFound && adm.code == http.StatusNotFound && !none.www {
			t.Logf("%-45s not served by this agent (part not wired): %s", r.Pattern, r.Where)
			continue
		}
		served++
		wrong := call(t, method, base+path, crew+"x")
		crew, admin = readTokens(t, dataDir)
		cr := call(t, method, base+path, crew)
		cases := []struct {
			who     string
			a       answer
			allowed bool
		}{
			{"no token", none, r.Role == httpapi.Public},
			{"wrong token", wrong, r.Role == httpapi.Public},
			{"crew", cr, r.Role <= httpapi.Crew},
			{"admin", adm, true},
		}
		for _, c := range cases {
			if c.a.refused() == c.allowed {
				t.Errorf("%s (%s, %s) as %s: %d %q; want allowed=%v", r.Pattern, r.Role, r.Where, c.who, c.a.code, c.a.body, c.allowed)
			}
		}
		if r.Role != httpapi.Public && (none.code != 401 || wrong.code != 401) {
			t.Errorf("%s: no token %d, wrong token %d; want 401", r.Pattern, none.code, wrong.code)
		}
		t.Logf("%-45s %-6s none=%d wrong=%d crew=%d admin=%d", r.Pattern, r.Role, none.code, wrong.code, cr.code, adm.code)
	}
	if served < 10 {
		t.Fatalf("only %d routes served", served)
	}
}

// token show prints the two tokens from 0600 files; rotate makes a new
// one that the running agent accepts at once, and the old one is 401.
func TestTokenCLI(t *testing.T) {
	p, dataDir := startSecured(t, "")
	out, err := exec.Command(agentBin, "token", "show", "--data", dataDir).CombinedOutput()
	if err != nil {
		t.Fatalf("token show: %v\n%s", err, out)
	}
	crew, admin := readTokens(t, dataDir)
	if !strings.Contains(string(out), "crew   "+crew) || !strings.Contains(string(out), "admin  "+admin) {
		t.Fatalf("token show printed:\n%s", out)
	}
	for _, f := range []string{"crew.token", "admin.token"} {
		fi, err := os.Stat(filepath.Join(dataDir, auth.TokenDir, f))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", f, fi.Mode(), err)
		}
	}
	base := "http://" + p.http
	if a := call(t, "GET", base+"/api/status", crew); a.code != 200 {
		t.Fatalf("crew token: %d", a.code)
	}
	out, err = exec.Command(agentBin, "token", "rotate", "crew", "--data", dataDir).CombinedOutput()
	if err != nil {
		t.Fatalf("token rotate: %v\n%s", err, out)
	}
	newCrew, _ := readTokens(t, dataDir)
	if newCrew == crew || !strings.Contains(string(out), newCrew) {
		t.Fatalf("rotate printed:\n%s", out)
	}
	if a := call(t, "GET", base+"/api/status", crew); a.code != 401 {
		t.Fatalf("old crew token after rotation: %d", a.code)
	}
	if a := call(t, "GET", base+"/api/status", newCrew); a.code != 200 {
		t.Fatalf("new crew token: %d", a.code)
	}
	if _, err := exec.Command(agentBin, "token", "rotate", "boss", "--data", dataDir).CombinedOutput(); err == nil {
		t.Fatal("rotate of an unknown role succeeded")
	}
}

// Sign-offs over the API: logged with who and when, kept across a
// restart, and the gate opens once all is signed (warnings allowed here).
func TestPreflightSignoffAPI(t *testing.T) {
	p, dataDir := startSecured(t, "preflight:\n  allow_warn: true\n  items:\n    - {id: creator, label: Creator confirmed, owner: producer}\n")
	crew, _ := readTokens(t, dataDir)
	base := "http://" + p.http
	post := func(path, body, tok string) (int, string) {
		req, _ := http.NewRequest("POST", base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := post("/api/preflight/signoff", `{"item":"creator","by":"Mallory"}`, crew+"x"); code != 401 {
		t.Fatalf("wrong token sign-off: %d", code)
	}
	if code, body := post("/api/preflight/signoff", `{"item":"creator"}`, crew); code != 400 {
		t.Fatalf("sign-off without a name: %d %s", code, body)
	}
	code, body := post("/api/preflight/signoff", `{"item":"creator","by":"Ana"}`, crew)
	if code != 200 || !strings.Contains(body, `"signed_by": "Ana"`) {
		t.Fatalf("sign-off: %d %s", code, body)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		a := call(t, "GET", base+"/api/preflight/state", crew)
		if strings.Contains(a.body, `"open": true`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("gate not open after sign-off:\n%s", a.body)
		}
		post("/api/preflight/run", "", crew)
	}
	a := call(t, "GET", base+"/api/preflight", crew)
	if !strings.Contains(a.body, "sign-off: Creator confirmed") || !strings.Contains(a.body, "signed off by Ana") {
		t.Fatalf("/api/preflight lacks the manual item:\n%s", a.body)
	}
	if !strings.Contains(p.log.String(), "pre-show sign-off") {
		t.Fatal("sign-off not logged")
	}
	log, _ := os.ReadFile(filepath.Join(dataDir, "preflight-signoffs.jsonl"))
	if !strings.Contains(string(log), `"by":"Ana"`) {
		t.Fatalf("sign-off log:\n%s", log)
	}
}

// With accounts configured, the embedded broker admits only them; the
// agent logs in with its own, and a wearable is kept to its cue topics.
func TestBrokerAccounts(t *testing.T) {
	dir := t.TempDir()
	write := func(name, v string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	mqttAddr := mqtttest.FreePort(t)
	cfg := writeConfig(t, "box: show1\nboard: sim\nmqtt:\n  listen: "+mqttAddr+"\n  username: agent\n  password_file: "+write("agent.pw", "agent-secret")+
		"\n  users:\n    - {name: w1, password_file: "+write("w1.pw", "w1-secret")+", wearable: w1}\n")
	p := startAgent(t, nil, "--config", cfg)
	p.waitHealthy(t, 10*time.Second)
	dial := func(user, pw string) error {
		c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + mqttAddr).SetClientID("t-" + user + pw).
			SetUsername(user).SetPassword(pw).SetAutoReconnect(false))
		tok := c.Connect()
		tok.WaitTimeout(5 * time.Second)
		if tok.Error() == nil {
			c.Disconnect(50)
		}
		return tok.Error()
	}
	if err := dial("", ""); err == nil {
		t.Fatal("anonymous client admitted")
	}
	if err := dial("w1", "wrong"); err == nil {
		t.Fatal("wrong password admitted")
	}
	if err := dial("w1", "w1-secret"); err != nil {
		t.Fatalf("wearable refused: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !p.status(t).MQTT.Connected {
		if time.Now().After(deadline) {
			t.Fatal("the agent did not log in to its own broker")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// With http.tls_cert/tls_key the agent serves HTTPS, and the login
// cookie is Secure.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "box.local"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)

	cfg := writeConfig(t, "box: show1\nboard: sim\nhttp:\n  auth: required\n  tls_cert: "+certFile+"\n  tls_key: "+keyFile+"\n")
	dataDir := t.TempDir()
	p := startAgent(t, nil, "--config", cfg, "--data", dataDir, "--mqtt-listen", mqtttest.FreePort(t))
	pool := x509.NewCertPool()
	leaf, _ := x509.ParseCertificate(der)
	pool.AddCert(leaf)
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var resp *http.Response
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err = c.Get("https://" + p.http + "/healthz")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("https healthz: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	resp.Body.Close()
	crew, _ := readTokens(t, dataDir)
	resp, err = c.PostForm("https://"+p.http+"/login", url.Values{"token": {crew}, "name": {"Ana"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if sc := resp.Header.Get("Set-Cookie"); resp.StatusCode != http.StatusSeeOther || !strings.Contains(sc, "Secure") {
		t.Fatalf("login over TLS: %d, cookie %q", resp.StatusCode, sc)
	}
	// Plain HTTP on the TLS port gets nowhere.
	if r, err := http.Get("http://" + p.http + "/api/status"); err == nil && r.StatusCode == 200 {
		t.Fatal("plain HTTP answered on the TLS listener")
	}
}
