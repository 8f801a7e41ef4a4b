package service

import (
	"context"
	"testing"

	"fieldkit/internal/bus"
	"fieldkit/internal/mqttc"
	"fieldkit/printer/label"
)

// FuzzMQTTPrintPayload feeds arbitrary payloads to the print topic: each
// is either queued as a job that can be encoded for the printer, or
// refused with an error; it never panics.
func FuzzMQTTPrintPayload(f *testing.F) {
	for _, s := range []string{
		`{"id":"a","label":{"elements":[{"text":"A","size":2,"bold":true},{"cut":true}]}}`,
		`{"label":{"elements":[{"qr":"https://example.com/r/1","ec":"H"},{"code128":"A-1"}]}}`,
		`{"pickup":{"order":"A-1","buyer":"Zoë","items":[{"qty":1,"name":"Tee","price":2500}],"total":2500,"currency":"EUR"}}`,
		`{"label":{"elements":[]}}`,
		`{"id":"bad id","label":{"elements":[{"text":"x"}]}}`,
		`{"label":{},"pickup":{}}`,
		`{"label":`, `[]`, `null`, "\xff",
	} {
		f.Add([]byte(s))
	}
	svc, err := New(Config{"demo": {Profile: label.Profile{Language: label.TSPL}, Transport: "fake"}},
		Deps{DataDir: f.TempDir(), Bus: bus.New(nil), MQTT: newFakeMQTT()})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { svc.Close() })
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, payload []byte) {
		err := svc.handleMQTT(ctx, mqttc.Message{Topic: "fieldkit/test/printer/demo/print", Payload: payload})
		if err != nil {
			return
		}
		jobs, lerr := svc.Store().List(ctx, "demo", 1)
		if lerr != nil || len(jobs) == 0 {
			t.Fatalf("accepted %q but no job stored: %v", payload, lerr)
		}
		if _, derr := label.Decode(jobs[0].Label); derr != nil {
			t.Fatalf("stored a label that does not decode: %s: %v", jobs[0].Label, derr)
		}
	})
}
