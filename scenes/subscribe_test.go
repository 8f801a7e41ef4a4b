package scenes

import (
	"testing"

	"fieldkit/internal/mqttc"
)

// subMQTT is the in-memory connection with removable handlers, as
// *mqttc.Conn has them.
type subMQTT struct {
	*fakeMQTT
	cancelled []string
}

func (f *subMQTT) Subscribe(filter string, h mqttc.Handler) (func(), error) {
	if err := f.Handle(filter, h); err != nil {
		return nil, err
	}
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		delete(f.handlers, filter)
		f.cancelled = append(f.cancelled, filter)
	}, nil
}

// A reload that drops an MQTT trigger drops its subscription too, so
// that filters do not pile up across reloads.
func TestReloadDropsOldMQTTTriggers(t *testing.T) {
	sm := &subMQTT{fakeMQTT: newFakeMQTT()}
	src := func(filter string) string {
		return "name: drop\ntriggers:\n  - mqtt: " + filter + "\nsteps:\n  - {at: 0s, target: e, do: \"on\"}\n"
	}
	r := newRig(t, map[string]string{"drop.yaml": src("shop/a")}, func(d *Deps) { d.MQTT = sm })
	has := func(f string) bool {
		sm.mu.Lock()
		defer sm.mu.Unlock()
		return len(sm.handlers[f]) > 0
	}
	waitFor(t, "shop/a handled", func() bool { return has("shop/a") })

	writeFiles(t, r.dir, map[string]string{"drop.yaml": src("shop/b")})
	if err := r.e.Reload(); err != nil {
		t.Fatal(err)
	}
	if !has("shop/b") {
		t.Fatal("the new trigger is not handled")
	}
	if has("shop/a") {
		t.Fatal("the old trigger is still handled after the reload")
	}
	if !has("fieldkit/test/scene/+/run") {
		t.Fatal("the scene commands lost their handler")
	}
	// The same set again changes nothing.
	if err := r.e.Reload(); err != nil {
		t.Fatal(err)
	}
	sm.mu.Lock()
	n := len(sm.cancelled)
	sm.mu.Unlock()
	if n != 1 || !has("shop/b") {
		t.Fatalf("a reload of the same set cancelled %d subscriptions", n)
	}
}
