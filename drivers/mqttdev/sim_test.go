package mqttdev

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"fieldkit/internal/mqtttest"
)

// sim is a device on the broker that behaves as its kind's docs say: it
// announces its availability (retained, like an LWT), takes its commands
// and answers with its state (Tasmota stat/<t>/RESULT and POWER<n>, WLED
// <t>/g, Zigbee2MQTT's echo on <base>/<name>) or an RPC reply (Shelly,
// on <src>/rpc), each after its latency.
type sim struct {
	o       Opts
	c       *mqtttest.Client
	latency time.Duration
	// rpcErr makes a Shelly answer every request with this error.
	rpcErr string
	mute   atomic.Bool // unplugged: no answers

	mu   sync.Mutex
	on   bool
	bri  int // percent
	cmds []string
}

func startSim(t *testing.T, url string, o Opts, latency time.Duration) *sim {
	t.Helper()
	if o.Base == "" {
		o.Base = "zigbee2mqtt"
	}
	s := &sim{o: o, latency: latency, bri: 100, c: mqtttest.Connect(t, url, "sim-"+string(o.Kind)+"-"+o.Name)}
	var filter string
	switch o.Kind {
	case WLED:
		filter = o.Topic + "/api"
	case Tasmota:
		filter = "cmnd/" + o.Topic + "/+"
	case Shelly:
		filter = o.Topic + "/rpc"
	case Z2M:
		filter = o.Base + "/" + o.Topic + "/set"
	}
	tok := s.c.Paho().Subscribe(filter, 1, func(_ paho.Client, m paho.Message) { s.take(m.Topic(), m.Payload()) })
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("sim subscribe: %v", tok.Error())
	}
	s.setOnline(t, true)
	return s
}

// setOnline publishes the availability the kind's firmware does (a
// retained LWT, or its birth message).
func (s *sim) setOnline(t *testing.T, up bool) {
	t.Helper()
	o := s.o
	switch o.Kind {
	case WLED:
		s.c.Publish(o.Topic+"/status", 1, true, map[bool]string{true: "online", false: "offline"}[up])
	case Tasmota:
		s.c.Publish("tele/"+o.Topic+"/LWT", 1, true, map[bool]string{true: "Online", false: "Offline"}[up])
	case Shelly:
		s.c.Publish(o.Topic+"/online", 1, true, strconv.FormatBool(up))
	case Z2M:
		s.c.Publish(o.Base+"/"+o.Topic+"/availability", 1, true, fmt.Sprintf(`{"state":%q}`, map[bool]string{true: "online", false: "offline"}[up]))
	}
}

func (s *sim) commands() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.cmds...)
}

func (s *sim) later(topic, payload string) {
	time.AfterFunc(s.latency, func() { s.c.Paho().Publish(topic, 1, false, payload) })
}

func (s *sim) take(topic string, p []byte) {
	s.mu.Lock()
	s.cmds = append(s.cmds, topic+" "+string(p))
	s.mu.Unlock()
	if s.mute.Load() {
		return
	}
	o := s.o
	s.mu.Lock()
	defer s.mu.Unlock()
	switch o.Kind {
	case WLED:
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
		g := 0
		if v.Bri != nil {
			s.bri = *v.Bri
		}
		if s.on {
			g = s.bri
		}
		s.later(o.Topic+"/g", strconv.Itoa(g))
	case Tasmota:
		cmd := topic[strings.LastIndex(topic, "/")+1:]
		key := strings.ToUpper(cmd)
		switch {
		case strings.HasPrefix(key, "POWER"):
			s.on = string(p) == "ON"
			state := map[bool]string{true: "ON", false: "OFF"}[s.on]
			s.later("stat/"+o.Topic+"/RESULT", fmt.Sprintf(`{%q:%q}`, key, state))
			s.later("stat/"+o.Topic+"/"+key, state)
		case key == "DIMMER":
			s.bri, _ = strconv.Atoi(string(p))
			s.on = true // Dimmer switches a Tasmota light on
			s.later("stat/"+o.Topic+"/RESULT", fmt.Sprintf(`{"POWER":"ON","Dimmer":%d}`, s.bri))
		case key == "COLOR":
			s.later("stat/"+o.Topic+"/RESULT", fmt.Sprintf(`{"POWER":"ON","Dimmer":%d,"Color":"FF8000"}`, s.bri))
		}
	case Shelly:
		var req struct {
			ID     int64          `json:"id"`
			Src    string         `json:"src"`
			Method string         `json:"method"`
			Params map[string]any `json:"params"`
		}
		if json.Unmarshal(p, &req) != nil {
			return
		}
		if s.rpcErr != "" {
			s.later(req.Src+"/rpc", fmt.Sprintf(`{"id":%d,"src":%q,"dst":%q,"error":{"code":-105,"message":%q}}`, req.ID, o.Topic, req.Src, s.rpcErr))
			return
		}
		was := s.on
		s.on, _ = req.Params["on"].(bool)
		s.later(req.Src+"/rpc", fmt.Sprintf(`{"id":%d,"src":%q,"dst":%q,"result":{"was_on":%v}}`, req.ID, o.Topic, req.Src, was))
	case Z2M:
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
		s.later(o.Base+"/"+o.Topic, fmt.Sprintf(`{"state":%q,"brightness":%d,"linkquality":120}`, v.State, s.bri))
	}
}
