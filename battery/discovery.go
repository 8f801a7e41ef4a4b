package battery

import (
	"encoding/json"
	"strings"

	"fieldkit/internal/topic"
)

// DiscoveryPrefix is Home Assistant's default discovery prefix.
const DiscoveryPrefix = "homeassistant"

// haSensor is a Home Assistant MQTT sensor discovery payload.
type haSensor struct {
	Name              string   `json:"name"`
	UniqueID          string   `json:"unique_id"`
	ObjectID          string   `json:"object_id"`
	StateTopic        string   `json:"state_topic"`
	ValueTemplate     string   `json:"value_template"`
	Unit              string   `json:"unit_of_measurement"`
	DeviceClass       string   `json:"device_class"`
	StateClass        string   `json:"state_class"`
	AvailabilityTopic string   `json:"availability_topic"`
	PayloadAvailable  string   `json:"payload_available"`
	PayloadNotAvail   string   `json:"payload_not_available"`
	Device            haDevice `json:"device"`
}

type haDevice struct {
	Identifiers  []string `json:"identifiers"`
	Name         string   `json:"name"`
	Manufacturer string   `json:"manufacturer"`
	Model        string   `json:"model"`
	ViaDevice    string   `json:"via_device,omitempty"`
}

// discovery returns topic → payload of the rig's Home Assistant entities:
// charge (device_class battery, %) and time to empty (duration, s).
func discovery(box, prefix string, r Rig) map[string][]byte {
	node := "fieldkit_" + strings.ReplaceAll(box, "-", "_")
	obj := strings.ReplaceAll(r.Name, "-", "_")
	dev := haDevice{
		Identifiers:  []string{node + "_" + obj},
		Name:         r.Name + " battery",
		Manufacturer: "fieldkit",
		Model:        model(r),
		ViaDevice:    node,
	}
	state := StateTopic(prefix, r.Name)
	base := haSensor{StateTopic: state, StateClass: "measurement",
		AvailabilityTopic: topic.Under(prefix, topic.Status), PayloadAvailable: "online", PayloadNotAvail: "offline", Device: dev}
	charge := base
	charge.Name, charge.UniqueID, charge.ObjectID = "Charge", node+"_"+obj+"_charge", node+"_"+obj+"_charge"
	charge.ValueTemplate, charge.Unit, charge.DeviceClass = "{{ value_json.percent }}", "%", "battery"
	tte := base
	tte.Name, tte.UniqueID, tte.ObjectID = "Time to empty", node+"_"+obj+"_tte", node+"_"+obj+"_tte"
	tte.ValueTemplate, tte.Unit, tte.DeviceClass = "{{ value_json.tte_s }}", "s", "duration"
	out := map[string][]byte{}
	for o, s := range map[string]haSensor{obj + "_charge": charge, obj + "_tte": tte} {
		b, _ := json.Marshal(s)
		out[DiscoveryPrefix+"/sensor/"+node+"/"+o+"/config"] = b
	}
	return out
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
	for _, r := range w.rigs {
		if !r.cfg.homeAssistant() {
			continue
		}
		for t, b := range discovery(w.d.Box, w.d.MQTT.Prefix(), r.cfg) {
			w.d.MQTT.SetRetained(t, b)
		}
	}
}
