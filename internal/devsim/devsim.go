// Package devsim simulates MQTT devices as their docs describe them (WLED, Tasmota, Shelly Gen2, Zigbee2MQTT lights and switches, and fieldkit wearables), each with a set latency, for tests, benches and the demo.
package devsim

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// Device names the simulated device as the agent's config does.
type Device struct {
	Kind    string // wled, tasmota, shelly or z2m
	Topic   string
	Base    string // Zigbee2MQTT base topic (default zigbee2mqtt)
	Channel int
}

// Sim is a device on the broker: it announces its availability
// (retained, like an LWT or birth message), takes its commands and
// answers with its state (Tasmota stat/<t>/RESULT and POWER<n>, WLED
// <t>/g, Zigbee2MQTT's echo on <base>/<name>) or an RPC reply (Shelly, on
// <src>/rpc), each after its latency.
type Sim struct {
	d       Device
	c       paho.Client
	latency time.Duration

	mute   atomic.Bool // unplugged: takes commands, answers nothing
	rpcErr atomic.Value

	mu   sync.Mutex
	on   bool
	bri  int
	cmds []string
}

// Start connects a simulator for d to the broker at url (tcp://host:port).
func Start(url, clientID string, d Device, latency time.Duration) (*Sim, error) {
	if d.Base == "" {
		d.Base = "zigbee2mqtt"
	}
	// A device takes its commands in the order they arrive; paho's
	// unordered mode would hand each to a goroutine of its own, and on a
	// slow box (qemu) record Dimmer and POWER the other way round. take
	// never blocks on the network (replies go out from timers).
	o := paho.NewClientOptions().AddBroker(url).SetClientID(clientID).SetCleanSession(true).SetOrderMatters(true)
	s := &Sim{d: d, latency: latency, bri: 100, c: paho.NewClient(o)}
	s.rpcErr.Store("")
	if tok := s.c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return nil, fmt.Errorf("devsim %s %s: connect: %v", d.Kind, d.Topic, tok.Error())
	}
	var filter string
	switch d.Kind {
	case "wled":
		filter = d.Topic + "/api"
	case "tasmota":
		filter = "cmnd/" + d.Topic + "/+"
	case "shelly":
		filter = d.Topic + "/rpc"
	case "z2m":
		filter = d.Base + "/" + d.Topic + "/set"
	default:
		s.c.Disconnect(0)
		return nil, fmt.Errorf("devsim: unknown kind %q", d.Kind)
	}
	tok := s.c.Subscribe(filter, 1, func(_ paho.Client, m paho.Message) { s.take(m.Topic(), m.Payload()) })
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		s.c.Disconnect(0)
		return nil, fmt.Errorf("devsim subscribe %s: %v", filter, tok.Error())
	}
	if err := s.SetOnline(true); err != nil {
		s.c.Disconnect(0)
		return nil, err
	}
	return s, nil
}

// Close disconnects the simulator (its retained availability stays).
func (s *Sim) Close() { s.c.Disconnect(100) }

// Mute unplugs the device (true): commands reach it, it answers nothing.
func (s *Sim) Mute(m bool) { s.mute.Store(m) }

// FailRPC makes a Shelly answer every request with this error message
// ("" answers normally).
func (s *Sim) FailRPC(msg string) { s.rpcErr.Store(msg) }

// SetOnline publishes the availability the kind's firmware does.
func (s *Sim) SetOnline(up bool) error {
	d := s.d
	var topic, p string
	switch d.Kind {
	case "wled":
		topic, p = d.Topic+"/status", map[bool]string{true: "online", false: "offline"}[up]
	case "tasmota":
		topic, p = "tele/"+d.Topic+"/LWT", map[bool]string{true: "Online", false: "Offline"}[up]
	case "shelly":
		topic, p = d.Topic+"/online", strconv.FormatBool(up)
	case "z2m":
		topic, p = d.Base+"/"+d.Topic+"/availability", fmt.Sprintf(`{"state":%q}`, map[bool]string{true: "online", false: "offline"}[up])
	}
	tok := s.c.Publish(topic, 1, true, p)
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return fmt.Errorf("devsim availability: %v", tok.Error())
	}
	return nil
}

// Commands are the commands taken so far, as "topic payload".
func (s *Sim) Commands() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.cmds...)
}

func (s *Sim) later(topic, payload string) {
	time.AfterFunc(s.latency, func() { s.c.Publish(topic, 1, false, payload) })
}

func (s *Sim) take(topic string, p []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cmds = append(s.cmds, topic+" "+string(p))
	if s.mute.Load() {
		return
	}
	d := s.d
	switch d.Kind {
	case "wled":
		var v struct {
			On  *bool `json:"on"`
			Bri *int  `json:"bri"`
		}
		if json.Unmarshal(p, &v) != nil {
			return
		}
		if v.On != nil {
			s.on = *v.On
		}
		if v.Bri != nil {
			s.bri = *v.Bri
		}
		g := 0
		if s.on {
			g = s.bri
		}
		s.later(d.Topic+"/g", strconv.Itoa(g))
	case "tasmota":
		key := strings.ToUpper(topic[strings.LastIndex(topic, "/")+1:])
		switch {
		case strings.HasPrefix(key, "POWER"):
			s.on = string(p) == "ON"
			state := map[bool]string{true: "ON", false: "OFF"}[s.on]
			s.later("stat/"+d.Topic+"/RESULT", fmt.Sprintf(`{%q:%q}`, key, state))
			s.later("stat/"+d.Topic+"/"+key, state)
		case key == "DIMMER":
			s.bri, _ = strconv.Atoi(string(p))
			s.on = true // Dimmer switches a Tasmota light on
			s.later("stat/"+d.Topic+"/RESULT", fmt.Sprintf(`{"POWER":"ON","Dimmer":%d}`, s.bri))
		case key == "COLOR":
			s.later("stat/"+d.Topic+"/RESULT", fmt.Sprintf(`{"POWER":"ON","Dimmer":%d,"Color":"FF8000"}`, s.bri))
		}
	case "shelly":
		var req struct {
			ID     int64          `json:"id"`
			Src    string         `json:"src"`
			Params map[string]any `json:"params"`
		}
		if json.Unmarshal(p, &req) != nil {
			return
		}
		if msg := s.rpcErr.Load().(string); msg != "" {
			s.later(req.Src+"/rpc", fmt.Sprintf(`{"id":%d,"src":%q,"dst":%q,"error":{"code":-105,"message":%q}}`, req.ID, d.Topic, req.Src, msg))
			return
		}
		was := s.on
		s.on, _ = req.Params["on"].(bool)
		s.later(req.Src+"/rpc", fmt.Sprintf(`{"id":%d,"src":%q,"dst":%q,"result":{"was_on":%v}}`, req.ID, d.Topic, req.Src, was))
	case "z2m":
		var v struct {
			State      string `json:"state"`
			Brightness *int   `json:"brightness"`
		}
		if json.Unmarshal(p, &v) != nil {
			return
		}
		s.on = v.State == "ON"
		if v.Brightness != nil {
			s.bri = *v.Brightness
		}
		s.later(d.Base+"/"+d.Topic, fmt.Sprintf(`{"state":%q,"brightness":%d,"linkquality":120}`, v.State, s.bri))
	}
}
