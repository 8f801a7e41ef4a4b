package battery

import (
	"context"
	"encoding/json"
	"math"
	"strings"
	"time"

	"fieldkit/battery/source/mqttsrc"
	"fieldkit/internal/mqttc"
	"fieldkit/internal/topic"
)

// DiscoveryPrefix is Home Assistant's default discovery prefix.
const DiscoveryPrefix = "homeassistant"

// Home Assistant MQTT discovery, per its documentation of the MQTT sensor
// and of discovery: one retained config per entity under
// <prefix>/sensor/<node_id>/<object_id>/config, each carrying the device
// block (so that any one of them creates the device) and the origin.
// default_entity_id ("sensor.<id>") replaces object_id, which Home
// Assistant 2025.10 deprecated and 2026.4 removed.
type haSensor struct {
	Name             string           `json:"name"`
	UniqueID         string           `json:"unique_id"`
	DefaultEntityID  string           `json:"default_entity_id"`
	StateTopic       string           `json:"state_topic"`
	ValueTemplate    string           `json:"value_template"`
	Unit             string           `json:"unit_of_measurement"`
	DeviceClass      string           `json:"device_class"`
	StateClass       string           `json:"state_class"`
	Precision        int              `json:"suggested_display_precision"`
	ExpireAfter      int64            `json:"expire_after"`
	Availability     []haAvailability `json:"availability"`
	AvailabilityMode string           `json:"availability_mode"`
	Device           haDevice         `json:"device"`
	Origin           haOrigin         `json:"origin"`
}

type haAvailability struct {
	Topic               string `json:"topic"`
	PayloadAvailable    string `json:"payload_available"`
	PayloadNotAvailable string `json:"payload_not_available"`
	ValueTemplate       string `json:"value_template,omitempty"`
}

type haDevice struct {
	Identifiers  []string `json:"identifiers"`
	Name         string   `json:"name"`
	Manufacturer string   `json:"manufacturer"`
	Model        string   `json:"model"`
	SWVersion    string   `json:"sw_version,omitempty"`
}

type haOrigin struct {
	Name       string `json:"name"`
	SWVersion  string `json:"sw_version,omitempty"`
	SupportURL string `json:"support_url,omitempty"`
}

// haNode is the discovery node id of a box: every entity of this box sits
// under <prefix>/sensor/<node>/.
func haNode(box string) string { return "fieldkit_" + strings.ReplaceAll(box, "-", "_") }

// discovery returns topic → payload of the rig's Home Assistant entities:
// charge (battery, %), time to empty (duration, s) and, for sources that
// measure them, voltage (V) and power (W). version is the agent's, for
// the device and origin blocks ("" to leave it out).
func discovery(box, prefix, version string, r Rig) map[string][]byte {
	node := haNode(box)
	obj := strings.ReplaceAll(r.Name, "-", "_")
	dev := haDevice{
		Identifiers:  []string{node + "_" + obj},
		Name:         r.Name + " battery",
		Manufacturer: "fieldkit",
		Model:        model(r),
		SWVersion:    version,
	}
	state := StateTopic(prefix, r.Name)
	// A rig is available while the agent is online (its last will says
	// offline) and its source reports: the retained state says stale
	// when it stops, and then Home Assistant shows the entities as
	// unavailable instead of the last charge.
	avail := []haAvailability{
		{Topic: topic.Under(prefix, topic.Status), PayloadAvailable: "online", PayloadNotAvailable: "offline"},
		{Topic: state, PayloadAvailable: "online", PayloadNotAvailable: "offline",
			ValueTemplate: "{{ 'offline' if value_json.stale else 'online' }}"},
	}
	// Should the agent hang while its connection (and so its status)
	// stays up, values still expire: twice the rig's stale time, at
	// least a minute.
	expire := int64(math.Ceil(max(2*r.staleAfter(), time.Minute).Seconds()))
	base := haSensor{StateTopic: state, StateClass: "measurement", ExpireAfter: expire,
		Availability: avail, AvailabilityMode: "all", Device: dev,
		Origin: haOrigin{Name: "fieldkit", SWVersion: version}}
	out := map[string][]byte{}
	add := func(suffix, name, field, unit, class string, precision int) {
		s := base
		s.Name = name
		s.UniqueID = node + "_" + obj + "_" + suffix
		s.DefaultEntityID = "sensor." + s.UniqueID
		s.ValueTemplate = "{{ value_json." + field + " }}"
		s.Unit, s.DeviceClass, s.Precision = unit, class, precision
		b, _ := json.Marshal(s)
		out[DiscoveryPrefix+"/sensor/"+node+"/"+obj+"_"+suffix+"/config"] = b
	}
	add("charge", "Charge", "percent", "%", "battery", 0)
	add("tte", "Time to empty", "tte_s", "s", "duration", 0)
	volts, watts := measures(r)
	if volts {
		add("voltage", "Voltage", "volts", "V", "voltage", 2)
	}
	if watts {
		add("power", "Power", "watts", "W", "power", 1)
	}
	return out
}

// measures says whether the rig's source reports volts and watts.
func measures(r Rig) (volts, watts bool) {
	if m, ok := r.Settings.(*mqttsrc.Config); ok {
		vals, _ := m.Values()
		for _, v := range vals {
			volts = volts || v.Unit == mqttsrc.UnitVolts
			watts = watts || v.Unit == mqttsrc.UnitWatts
		}
		return volts, watts
	}
	// INA219/INA226 measure both; a UPS reports battery.voltage and
	// ups.realpower; the sim has both.
	return true, true
}

func model(r Rig) string {
	if r.Preset != "" {
		return r.Source + " " + r.Preset
	}
	return r.Source
}

// announce publishes discovery for every rig, retained and re-asserted
// after every reconnect.
func (w *Watch) announce() {
	for t, b := range w.discoveryConfigs() {
		w.d.MQTT.SetRetained(t, b)
	}
}

func (w *Watch) discoveryConfigs() map[string][]byte {
	all := map[string][]byte{}
	for _, r := range w.rigs {
		if !r.cfg.homeAssistant() {
			continue
		}
		for t, b := range discovery(w.d.Box, w.d.MQTT.Prefix(), w.d.Version, r.cfg) {
			all[t] = b
		}
	}
	return all
}

// publisher is what the watch needs to clear configs it no longer owns.
type publisher interface {
	Publish(ctx context.Context, topic string, qos byte, retained bool, payload []byte) error
}

// cleanup removes the entities of rigs that are gone from the config (or
// opted out, or no longer measure a quantity): Home Assistant deletes an
// entity when its retained config is replaced by an empty one. The broker
// hands the retained configs of this box to the subscription; any that
// this configuration does not publish is cleared.
func (w *Watch) cleanup() error {
	pub, ok := w.d.MQTT.(publisher)
	if !ok {
		return nil
	}
	ours := w.discoveryConfigs()
	return w.d.MQTT.Handle(DiscoveryPrefix+"/sensor/"+haNode(w.d.Box)+"/+/config", func(ctx context.Context, m mqttc.Message) error {
		if len(m.Payload) == 0 {
			return nil
		}
		if _, keep := ours[m.Topic]; keep {
			return nil
		}
		w.log.Info("removing the Home Assistant entity of a battery rig no longer configured", "topic", m.Topic)
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if err := pub.Publish(pctx, m.Topic, 1, true, nil); err != nil {
			w.log.Warn("could not remove a stale Home Assistant entity", "topic", m.Topic, "err", err)
		}
		return nil
	})
}
