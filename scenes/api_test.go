package scenes

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"fieldkit/internal/doctor"
	"fieldkit/internal/httpapi"
)

// roleHeader takes the caller's role from a test header.
type roleHeader struct{}

func (roleHeader) RoleOf(r *http.Request) (httpapi.Role, error) {
	if r.Header.Get("X-Role") == "admin" {
		return httpapi.Admin, nil
	}
	return httpapi.Crew, nil
}

func call(t *testing.T, srv *httptest.Server, method, path, role, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	req.Header.Set("X-Role", role)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s %s: not JSON: %s", method, path, b)
	}
	return resp.StatusCode, v
}

func TestHTTPAPI(t *testing.T) {
	r := newRig(t, map[string]string{"drop.yaml": scene("ignore")})
	rt := httpapi.NewRouter(roleHeader{}, quietLog())
	r.e.Routes(rt)
	srv := httptest.NewServer(rt.Handler())
	defer srv.Close()

	code, v := call(t, srv, "GET", "/api/scenes", "crew", "")
	if code != 200 || len(v["scenes"].([]any)) != 1 {
		t.Fatalf("list: %d %v", code, v)
	}
	if code, v = call(t, srv, "POST", "/api/scenes/drop/run", "crew", "not json"); code != 400 || !strings.Contains(v["error"].(string), "not JSON") {
		t.Fatalf("bad body: %d %v", code, v)
	}
	if code, v = call(t, srv, "POST", "/api/scenes/drop/run", "crew", `{"by":"crew"}`); code != 202 || v["outcome"] != "started" {
		t.Fatalf("run: %d %v", code, v)
	}
	r.waitApplied(t, 2)
	if code, v = call(t, srv, "POST", "/api/scenes/drop/run", "crew", ""); code != 409 {
		t.Fatalf("run while running (ignore): %d %v", code, v)
	}
	if code, _ = call(t, srv, "POST", "/api/scenes/nope/run", "crew", ""); code != 404 {
		t.Fatalf("unknown scene: %d", code)
	}
	code, v = call(t, srv, "GET", "/api/scenes/drop", "crew", "")
	last := v["last_run"].(map[string]any)
	step := last["steps"].([]any)[0].(map[string]any)
	if code != 200 || last["trigger"] != "http" || step["lateness_us"] != 0.0 || step["planned"] == nil || step["actual"] == nil {
		t.Fatalf("detail: %d %v", code, v)
	}
	if code, v = call(t, srv, "POST", "/api/scenes/drop/cancel", "crew", ""); code != 200 || v["cancelled"] != true {
		t.Fatalf("cancel: %d %v", code, v)
	}
	waitFor(t, "cancelled", func() bool { return r.state("drop").State == StateCancelled })

	// Reload is for admins; a bad set is refused with file:line.
	if code, _ = call(t, srv, "POST", "/api/scenes/reload", "crew", ""); code != 403 {
		t.Fatalf("reload as crew: %d", code)
	}
	writeFiles(t, r.dir, map[string]string{"drop.yaml": "name: drop\nsteps:\n  - {at: 0s, target: a, do: haptic, pattern: tickle}\n"})
	code, v = call(t, srv, "POST", "/api/scenes/reload", "admin", "")
	if code != 422 || !strings.Contains(v["problems"].([]any)[0].(string), "drop.yaml:3: steps[0].do: unknown haptic pattern") {
		t.Fatalf("bad reload: %d %v", code, v)
	}
	rs := doctor.Run(context.Background(), r.e.Checks(), time.Second)
	if rs[0].Status != doctor.Fail || !strings.Contains(rs[0].Detail, "tickle") || rs[0].Fix == "" {
		t.Fatalf("check after a bad reload: %+v", rs[0])
	}
	st := r.e.Status().(map[string]any)
	if !strings.Contains(st["load_error"].(string), "tickle") {
		t.Fatalf("status: %v", st)
	}
	writeFiles(t, r.dir, map[string]string{"drop.yaml": scene("queue")})
	if code, v = call(t, srv, "POST", "/api/scenes/reload", "admin", ""); code != 200 {
		t.Fatalf("good reload: %d %v", code, v)
	}
	if rs = doctor.Run(context.Background(), r.e.Checks(), time.Second); doctor.Worst(rs) != doctor.OK {
		t.Fatalf("checks: %+v", rs)
	}
}
