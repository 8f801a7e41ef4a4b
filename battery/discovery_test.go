package battery

import (
	"context"
	"encoding/json"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"fieldkit/battery/source/sim"
	"fieldkit/internal/mqttc"
	"fieldkit/internal/mqtttest"
)

// The keys Home Assistant documents for an MQTT sensor, and for the device,
// origin and availability blocks of a discovery message
// (home-assistant.io/integrations/sensor.mqtt and integrations/mqtt,
// "Discovery messages"), as of 2026.4: object_id is no longer among them.
var (
	haSensorKeys = set("availability", "availability_mode", "availability_template", "availability_topic",
		"default_entity_id", "device", "device_class", "enabled_by_default", "encoding", "entity_category",
		"entity_picture", "expire_after", "force_update", "icon", "json_attributes_template",
		"json_attributes_topic", "last_reset_value_template", "name", "options", "origin",
		"payload_available", "payload_not_available", "platform", "qos", "state_class", "state_topic",
		"suggested_display_precision", "unique_id", "unit_of_measurement", "value_template")
	haDeviceKeys = set("configuration_url", "connections", "hw_version", "identifiers", "manufacturer",
		"model", "model_id", "name", "serial_number", "suggested_area", "sw_version", "via_device")
	haOriginKeys       = set("name", "sw_version", "support_url")
	haAvailabilityKeys = set("payload_available", "payload_not_available", "topic", "value_template")
	// Units Home Assistant accepts for each sensor device class we use
	// (its sensor device class table).
	haUnits = map[string][]string{
		"battery":  {"%"},
		"duration": {"d", "h", "min", "s", "ms"},
		"voltage":  {"V", "mV", "µV", "kV", "MV"},
		"power":    {"W", "kW", "MW", "GW", "TW", "mW"},
	}
)

func set(ks ...string) map[string]bool {
	m := map[string]bool{}
	for _, k := range ks {
		m[k] = true
	}
	return m
}

// checkDiscovery checks every config against the documented schema and
// the rules Home Assistant applies: a device block with identifiers and a
// name on every config, an origin, no via_device naming a device that no
// config defines, default_entity_id in the sensor domain, unique ids.
func checkDiscovery(t *testing.T, ds map[string][]byte) {
	t.Helper()
	devices := map[string]bool{}
	var vias []string
	uids := map[string]string{}
	topics := make([]string, 0, len(ds))
	for topic := range ds {
		topics = append(topics, topic)
	}
	sort.Strings(topics)
	for _, topic := range topics {
		var c map[string]any
		if err := json.Unmarshal(ds[topic], &c); err != nil {
			t.Fatalf("%s: %v", topic, err)
		}
		parts := strings.Split(topic, "/")
		if len(parts) != 5 || parts[0] != DiscoveryPrefix || parts[1] != "sensor" || parts[4] != "config" {
			t.Errorf("%s: not <prefix>/sensor/<node>/<object>/config", topic)
		}
		for k := range c {
			if !haSensorKeys[k] {
				t.Errorf("%s: key %q is not documented for an MQTT sensor", topic, k)
			}
		}
		for _, k := range []string{"name", "unique_id", "default_entity_id", "state_topic", "device", "origin", "device_class", "unit_of_measurement"} {
			if _, ok := c[k]; !ok {
				t.Errorf("%s: no %s", topic, k)
			}
		}
		uid, _ := c["unique_id"].(string)
		if prev, dup := uids[uid]; dup {
			t.Errorf("unique_id %s in %s and %s", uid, prev, topic)
		}
		uids[uid] = topic
		if id, _ := c["default_entity_id"].(string); id != "sensor."+uid {
			t.Errorf("%s: default_entity_id %q, want sensor.<unique_id>", topic, id)
		}
		class, _ := c["device_class"].(string)
		unit, _ := c["unit_of_measurement"].(string)
		ok := false
		for _, u := range haUnits[class] {
			ok = ok || u == unit
		}
		if !ok {
			t.Errorf("%s: unit %q is not one Home Assistant accepts for device class %q", topic, unit, class)
		}
		if m, _ := c["availability_mode"].(string); m != "" && m != "all" && m != "any" && m != "latest" {
			t.Errorf("%s: availability_mode %q", topic, m)
		}
		if _, both := c["availability_topic"]; both && c["availability"] != nil {
			t.Errorf("%s: availability and availability_topic together", topic)
		}
		av, _ := c["availability"].([]any)
		for _, a := range av {
			am, _ := a.(map[string]any)
			for k := range am {
				if !haAvailabilityKeys[k] {
					t.Errorf("%s: availability key %q", topic, k)
				}
			}
			if am["topic"] == nil {
				t.Errorf("%s: availability entry without a topic", topic)
			}
		}
		if e, ok := c["expire_after"].(float64); ok && (e <= 0 || e != float64(int(e))) {
			t.Errorf("%s: expire_after %v is not a positive whole number of seconds", topic, e)
		}
		dev, _ := c["device"].(map[string]any)
		for k := range dev {
			if !haDeviceKeys[k] {
				t.Errorf("%s: device key %q", topic, k)
			}
		}
		ids, _ := dev["identifiers"].([]any)
		if len(ids) == 0 || dev["name"] == nil {
			t.Errorf("%s: device without identifiers or name: %v", topic, dev)
		}
		for _, id := range ids {
			devices[id.(string)] = true
		}
		if v, ok := dev["via_device"].(string); ok {
			vias = append(vias, v)
		}
		org, _ := c["origin"].(map[string]any)
		for k := range org {
			if !haOriginKeys[k] {
				t.Errorf("%s: origin key %q", topic, k)
			}
		}
		if org["name"] == nil {
			t.Errorf("%s: origin without a name", topic)
		}
	}
	for _, v := range vias {
		if !devices[v] {
			t.Errorf("via_device %q names a device no config defines (Home Assistant shows an empty unnamed device)", v)
		}
	}
}

// Against real Mosquitto: a rig dropped from the config loses its entities
// (its retained configs are emptied), and the kept rig's stay.
func TestDiscoveryCleanup(t *testing.T) {
	m := mqtttest.StartMosquitto(t)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	obs := mqtttest.Connect(t, m.URL(), "observer")

	// A previous run had rigs "old" and "keep".
	prev := map[string][]byte{}
	for _, r := range []Rig{{Name: "old", Source: KindSim, Settings: &sim.Config{}}, {Name: "keep", Source: KindSim, Settings: &sim.Config{}}} {
		for tp, b := range discovery("box1", "fieldkit/box1", "", r) {
			prev[tp] = b
			obs.Publish(tp, 1, true, string(b))
		}
	}
	all := obs.Subscribe("homeassistant/sensor/fieldkit_box1/+/config")
	seen := map[string]string{}
	mqtttest.Await(t, all, 5*time.Second, "the previous run's configs", func(msg mqtttest.Msg) bool {
		seen[msg.Topic] = msg.Payload
		return len(seen) == len(prev)
	})

	conn := mqttc.New(mqttc.Options{URL: m.URL(), ClientID: "agent", Prefix: "fieldkit/box1"})
	wg.Add(1)
	go func() { defer wg.Done(); _ = conn.Run(ctx) }()
	w, err := New(Config{{Name: "keep", Source: KindSim, Settings: &sim.Config{}}}, Deps{Box: "box1", MQTT: conn})
	if err != nil {
		t.Fatal(err)
	}
	wg.Add(1)
	go func() { defer wg.Done(); _ = w.Run(ctx) }()

	mqtttest.Await(t, all, 10*time.Second, "old's configs emptied", func(msg mqtttest.Msg) bool {
		seen[msg.Topic] = msg.Payload
		for tp := range prev {
			if strings.Contains(tp, "/old_") && seen[tp] != "" {
				return false
			}
		}
		return true
	})
	// A client connecting now finds only keep's entities.
	late := mqtttest.Connect(t, m.URL(), "late")
	lateAll := late.Subscribe("homeassistant/sensor/fieldkit_box1/+/config")
	got := map[string]bool{}
	mqtttest.Await(t, lateAll, 5*time.Second, "keep's retained configs", func(msg mqtttest.Msg) bool {
		got[msg.Topic] = true
		return len(got) == 4
	})
	for tp := range got {
		if !strings.Contains(tp, "/keep_") {
			t.Errorf("retained config left for a removed rig: %s", tp)
		}
	}
}
