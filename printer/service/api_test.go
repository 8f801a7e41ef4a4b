package service

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"fieldkit/internal/doctor"
	"fieldkit/internal/httpapi"
	"fieldkit/internal/mqttc"
	"fieldkit/printer/fake"
	"fieldkit/printer/queue"
	"fieldkit/printer/template"
)

func TestHTTPAPI(t *testing.T) {
	r := newRig(t, fastBaud)
	r.fp.SetState(fake.PaperOut) // jobs stay in the queue until the test says
	r.start()
	rt := httpapi.NewRouter(httpapi.OpenAuth{}, nil)
	r.svc.Routes(rt)
	srv := httptest.NewServer(rt.Handler())
	defer srv.Close()

	call := func(method, path, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	pickup, _ := json.Marshal(template.SamplePickup())
	for _, tc := range []struct {
		method, path, body string
		code               int
		has                string
	}{
		{"POST", "/api/printers/counter/jobs", `{"id":"p1","label":{"elements":[{"text":"P1"},{"cut":true}]}}`, 201, `"state": "queued"`},
		{"POST", "/api/printers/counter/jobs", `{"id":"p1","label":{"elements":[{"text":"P1"},{"cut":true}]}}`, 200, `"id": "p1"`},
		{"POST", "/api/printers/counter/jobs", `{"id":"p1","label":{"elements":[{"text":"OTHER"}]}}`, 409, "already used"},
		{"POST", "/api/printers/counter/jobs", `{"id":"pk","pickup":` + string(pickup) + `}`, 201, `"id": "pk"`},
		{"POST", "/api/printers/counter/jobs", `{"label":{"elements":[{"txt":"x"}]}}`, 400, "no kind"},
		{"POST", "/api/printers/counter/jobs", `{"labl":{}}`, 400, "labl"},
		{"POST", "/api/printers/counter/jobs", `{}`, 400, "give label"},
		{"POST", "/api/printers/back/jobs", `{"label":{"elements":[{"text":"x"}]}}`, 404, "no such printer"},
		{"GET", "/api/jobs/p1", "", 200, `"printer": "counter"`},
		// What will not print as asked is on the job: the order as QR,
		// the emoji counted.
		{"POST", "/api/printers/counter/jobs", `{"id":"w1","pickup":{"order":"Ü-1","buyer":"Ada 🎉"}}`, 201, `printed as a QR code`},
		{"GET", "/api/jobs/w1", "", 200, `1 character(s) no printer or bitmap font has`},
		{"GET", "/api/jobs/nope", "", 404, "no such job"},
		{"GET", "/api/printers", "", 200, `"queue_depth": 3`},
		{"POST", "/api/jobs/w1/cancel", "", 200, `"state": "cancelled"`}, // the rest counts labels printed
		{"GET", "/api/printers/counter/jobs?state=parked&state=queued", "", 200, `"id": "pk"`},
		{"GET", "/api/printers/counter/jobs?limit=0", "", 400, "limit"},
		{"POST", "/api/jobs/p1/reprint", "", 409, "will print without a reprint"},
		{"POST", "/api/jobs/p1/cancel", "", 200, `"state": "cancelled"`},
		{"POST", "/api/jobs/p1/cancel", "", 409, "cannot become cancelled"},
	} {
		code, body := call(tc.method, tc.path, tc.body)
		if code != tc.code || !strings.Contains(body, tc.has) {
			t.Errorf("%s %s %s: %d %s\nwant %d containing %q", tc.method, tc.path, tc.body, code, body, tc.code, tc.has)
		}
	}
	r.fp.SetState(fake.Ready)
	r.waitJob("pk", queue.Done)
	if j := r.job("p1"); j.State != queue.Cancelled {
		t.Fatalf("cancelled job became %s", j.State)
	}
	if r.fp.Printed() != 1 {
		t.Fatalf("printed %d, want only the pickup label", r.fp.Printed())
	}
	code, body := call("POST", "/api/jobs/pk/reprint", "")
	if code != 201 || !strings.Contains(body, `"reprint_of": "pk"`) {
		t.Fatalf("reprint of a done job: %d %s", code, body)
	}
	waitFor(t, "the reprint", func() bool { return r.fp.Printed() == 2 })
}

func TestMQTTPrint(t *testing.T) {
	r := newRig(t, fastBaud)
	r.start()
	filter := "fieldkit/test/printer/+/print"
	var h mqttc.Handler
	waitFor(t, "the print topic handler", func() bool { h = r.mq.handler(filter); return h != nil })
	ctx := context.Background()
	for _, bad := range []struct{ topic, payload, want string }{
		{"fieldkit/test/printer/counter/print", `{"label":`, "bad JSON"},
		{"fieldkit/test/printer/counter/print", `{"label":{"elements":[{"qr":""}]}}`, "printer counter"},
		{"fieldkit/test/printer/back/print", `{"label":{"elements":[{"text":"x"}]}}`, "no such printer"},
	} {
		err := h(ctx, mqttc.Message{Topic: bad.topic, Payload: []byte(bad.payload)})
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s %s: err = %v, want %q", bad.topic, bad.payload, err, bad.want)
		}
	}
	err := h(ctx, mqttc.Message{Topic: "fieldkit/test/printer/counter/print", Payload: []byte(`{"id":"m1","label":{"elements":[{"text":"MQTT"},{"cut":true}]}}`)})
	if err != nil {
		t.Fatal(err)
	}
	r.waitJob("m1", queue.Done)
}

func TestChecks(t *testing.T) {
	r := newRig(t, fastBaud)
	r.start()
	run := func() doctor.Result {
		t.Helper()
		rs := doctor.Run(context.Background(), r.svc.Checks(), 0x7fffffff)
		if len(rs) != 1 {
			t.Fatalf("%d results", len(rs))
		}
		return rs[0]
	}
	if res := run(); res.Status != doctor.OK || !strings.Contains(res.Detail, "ready") {
		t.Fatalf("ready printer: %+v", res)
	}
	r.fp.SetState(fake.CoverOpen)
	if res := run(); res.Status != doctor.Fail || !strings.Contains(res.Fix, "cover") {
		t.Fatalf("cover open: %+v", res)
	}
	r.fp.SetState(fake.Silent)
	if res := run(); res.Status != doctor.Fail || !strings.Contains(res.Detail, "unknown") {
		t.Fatalf("silent: %+v", res)
	}
	r.fp.Unplug()
	if res := run(); res.Status != doctor.Fail || !strings.Contains(res.Detail, "offline") {
		t.Fatalf("unplugged: %+v", res)
	}
}
