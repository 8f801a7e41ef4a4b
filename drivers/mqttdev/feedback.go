package mqttdev

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"strconv"
	"strings"
)

// Report is what one message from a device says about it. Nil fields
// were not in the message.
type Report struct {
	Online *bool
	On     *bool
	// Bri is the brightness in the device's own units (WLED 0-255,
	// Tasmota Dimmer 0-100, Zigbee2MQTT 0-254).
	Bri *int
	// Reply is a Shelly RPC reply: its id, and its error message if it
	// answered with an error object.
	Reply    *int64
	ReplyErr string
}

// feedTopics are the filters a device of o's kind reports on: its
// availability and its state or replies, as each kind's docs define them.
func feedTopics(o Opts, prefix string) []string {
	switch o.Kind {
	case WLED:
		return []string{o.Topic + "/status", o.Topic + "/g", o.Topic + "/v"}
	case Tasmota:
		return []string{"tele/" + o.Topic + "/LWT", "stat/" + o.Topic + "/+"}
	case Shelly:
		return []string{o.Topic + "/online", shellySrc(o, prefix) + "/rpc"}
	case Z2M:
		return []string{o.Base + "/" + o.Topic + "/availability", o.Base + "/" + o.Topic}
	}
	return nil
}

// shellySrc is the src of the agent's RPC requests; a Shelly answers on
// <src>/rpc.
func shellySrc(o Opts, prefix string) string { return prefix + "/shelly/" + o.Name }

func ptr[T any](v T) *T { return &v }

// ParseReport decodes a message a device of o's kind published on topic.
// ok is false for a message that says nothing the agent follows.
func ParseReport(o Opts, prefix, topic string, payload []byte) (r Report, ok bool) {
	p := strings.TrimSpace(string(payload))
	switch o.Kind {
	case WLED:
		switch strings.TrimPrefix(topic, o.Topic+"/") {
		case "status": // the LWT: online / offline
			return availability(p)
		case "g": // brightness 0-255, 0 when off
			n, err := strconv.Atoi(p)
			if err != nil || n < 0 || n > 255 {
				return r, false
			}
			return Report{On: ptr(n > 0), Bri: ptr(n)}, true
		case "v": // the XML API answer; <ac> is the brightness
			var v struct {
				AC *int `xml:"ac"`
			}
			if xml.Unmarshal(payload, &v) != nil || v.AC == nil || *v.AC < 0 || *v.AC > 255 {
				return r, false
			}
			return Report{On: ptr(*v.AC > 0), Bri: v.AC}, true
		}
	case Tasmota:
		if topic == "tele/"+o.Topic+"/LWT" {
			return availability(p)
		}
		leaf := strings.TrimPrefix(topic, "stat/"+o.Topic+"/")
		if leaf == "RESULT" {
			var m map[string]json.RawMessage
			if json.Unmarshal(payload, &m) != nil {
				return r, false
			}
			for _, k := range tasmotaPowerKeys(o.Channel) {
				if v, has := m[k]; has {
					var s string
					if json.Unmarshal(v, &s) == nil {
						r.On, ok = onOff(s)
					}
				}
			}
			if v, has := m["Dimmer"]; has && o.Channel <= 1 {
				var n int
				if json.Unmarshal(v, &n) == nil && n >= 0 && n <= 100 {
					r.Bri, ok = &n, true
				}
			}
			return r, ok
		}
		for _, k := range tasmotaPowerKeys(o.Channel) {
			if leaf == k {
				r.On, ok = onOff(p)
				return r, ok
			}
		}
	case Shelly:
		if topic == o.Topic+"/online" {
			switch p {
			case "true":
				return Report{Online: ptr(true)}, true
			case "false":
				return Report{Online: ptr(false)}, true
			}
			return r, false
		}
		var f struct {
			ID    *int64 `json:"id"`
			Error *struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if json.Unmarshal(payload, &f) != nil || f.ID == nil {
			return r, false
		}
		r.Reply = f.ID
		if f.Error != nil {
			r.ReplyErr = f.Error.Message
			if r.ReplyErr == "" {
				r.ReplyErr = "error " + strconv.Itoa(f.Error.Code)
			}
		}
		return r, true
	case Z2M:
		if strings.HasSuffix(topic, "/availability") {
			// {"state":"online"} since Zigbee2MQTT 1.22, plain text before.
			var v struct {
				State string `json:"state"`
			}
			if bytes.HasPrefix(bytes.TrimSpace(payload), []byte("{")) {
				if json.Unmarshal(payload, &v) != nil {
					return r, false
				}
				p = v.State
			}
			return availability(p)
		}
		var v struct {
			State      *string `json:"state"`
			Brightness *int    `json:"brightness"`
		}
		if json.Unmarshal(payload, &v) != nil || v.State == nil {
			return r, false
		}
		if r.On, ok = onOff(*v.State); !ok {
			return r, false
		}
		if v.Brightness != nil && *v.Brightness >= 0 && *v.Brightness <= 254 {
			r.Bri = v.Brightness
		}
		return r, true
	}
	return r, false
}

func availability(p string) (Report, bool) {
	switch strings.ToLower(p) {
	case "online":
		return Report{Online: ptr(true)}, true
	case "offline":
		return Report{Online: ptr(false)}, true
	}
	return Report{}, false
}

func onOff(s string) (*bool, bool) {
	switch strings.ToUpper(s) {
	case "ON", "1", "TRUE":
		return ptr(true), true
	case "OFF", "0", "FALSE":
		return ptr(false), true
	}
	return nil, false
}

// tasmotaPowerKeys are the names under which Tasmota reports relay ch:
// a one-relay device says POWER, a multi-relay one POWER1 for the first.
func tasmotaPowerKeys(ch int) []string {
	if ch <= 1 {
		return []string{"POWER", "POWER1"}
	}
	return []string{"POWER" + strconv.Itoa(ch)}
}

// wantBri is the brightness, in the device's units, that confirms pct;
// -1 when the kind's report does not carry one to compare.
func wantBri(o Opts, pct int) int {
	switch o.Kind {
	case WLED:
		return scale(pct, 255)
	case Tasmota:
		if o.Channel > 1 {
			return -1
		}
		return pct
	case Z2M:
		return scale(pct, 254)
	}
	return -1
}

// confirms reports whether r shows the device in the state s that was
// commanded with Shelly request id seq.
func confirms(o Opts, s State, seq int64, r Report) bool {
	if o.Kind == Shelly {
		return r.Reply != nil && *r.Reply == seq && r.ReplyErr == ""
	}
	if r.On == nil || *r.On != s.On {
		return false
	}
	if s.On && r.Bri != nil {
		if w := wantBri(o, s.Brightness); w >= 0 && *r.Bri != w {
			return false
		}
	}
	return true
}
