package broker

import (
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

func TestWearableAllowed(t *testing.T) {
	for _, tc := range []struct {
		topic string
		ok    bool
	}{
		{"fieldkit/demo/cue/w1/cmd", true},
		{"fieldkit/demo/cue/w1/ack", true},
		{"fieldkit/demo/cue/w1/#", true},
		{"fieldkit/demo/cue/w1/+", true},
		{"fieldkit/demo/cue/w1", false},
		{"fieldkit/demo/cue/w1/", false},
		{"fieldkit/demo/cue/w10/cmd", false},
		{"fieldkit/demo/cue/w2/cmd", false},
		{"fieldkit/demo/cue/+/cmd", false},
		{"fieldkit/demo/#", false},
		{"#", false},
		{"$share/g/fieldkit/demo/cue/w1/cmd", false},
		{"fieldkit/other/cue/w1/cmd", false},
	} {
		if got := WearableAllowed("fieldkit/demo", "w1", tc.topic); got != tc.ok {
			t.Errorf("%q: %v, want %v", tc.topic, got, tc.ok)
		}
	}
}

func startAuthBroker(t *testing.T) string {
	t.Helper()
	b, err := New(Options{Listen: "127.0.0.1:0", Hook: new(AuthHook), HookConfig: &AuthConfig{
		Prefix: "fieldkit/demo",
		Users: []User{
			{Name: "agent", Password: "agent-pw"},
			{Name: "w1", Password: "w1-pw", Wearable: "w1"},
			{Name: "w2", Password: "w2-pw", Wearable: "w2"},
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return "tcp://" + b.Addr()
}

func dial(url, user, pw, id string) (paho.Client, error) {
	o := paho.NewClientOptions().AddBroker(url).SetClientID(id).SetUsername(user).SetPassword(pw).
		SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
	c := paho.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(5 * time.Second) {
		return nil, errTimeout
	}
	return c, tok.Error()
}

type timeoutErr struct{}

func (timeoutErr) Error() string { return "timeout" }

var errTimeout = timeoutErr{}

func TestAuthHookConnect(t *testing.T) {
	url := startAuthBroker(t)
	for _, tc := range []struct {
		user, pw string
		ok       bool
	}{
		{"agent", "agent-pw", true},
		{"w1", "w1-pw", true},
		{"", "", false},
		{"agent", "wrong", false},
		{"agent", "", false},
		{"nobody", "agent-pw", false},
		{"w1", "w2-pw", false},
	} {
		c, err := dial(url, tc.user, tc.pw, "c-"+tc.user+tc.pw)
		if (err == nil) != tc.ok {
			t.Errorf("user %q pw %q: err %v, want ok=%v", tc.user, tc.pw, err, tc.ok)
		}
		if err == nil {
			c.Disconnect(50)
		}
	}
}

func subscribe(t *testing.T, c paho.Client, filter string) (<-chan string, byte) {
	t.Helper()
	ch := make(chan string, 16)
	tok := c.Subscribe(filter, 1, func(_ paho.Client, m paho.Message) { ch <- m.Topic() + "=" + string(m.Payload()) })
	if !tok.WaitTimeout(5 * time.Second) {
		t.Fatalf("subscribe %s: timeout", filter)
	}
	return ch, tok.(*paho.SubscribeToken).Result()[filter]
}

// A wearable reads and writes its own cue topics and nothing else.
func TestAuthHookWearableACL(t *testing.T) {
	url := startAuthBroker(t)
	agent, err := dial(url, "agent", "agent-pw", "agent")
	if err != nil {
		t.Fatal(err)
	}
	defer agent.Disconnect(50)
	w1, err := dial(url, "w1", "w1-pw", "w1")
	if err != nil {
		t.Fatal(err)
	}
	defer w1.Disconnect(50)

	if _, code := subscribe(t, w1, "fieldkit/demo/cue/+/cmd"); code < 0x80 {
		t.Fatalf("w1 subscribed to every wearable's cues (granted qos %d)", code)
	}
	if _, code := subscribe(t, w1, "fieldkit/demo/#"); code < 0x80 {
		t.Fatalf("w1 subscribed to the whole box (granted qos %d)", code)
	}
	got, code := subscribe(t, w1, "fieldkit/demo/cue/w1/#")
	if code >= 0x80 {
		t.Fatalf("w1 refused its own cue topics (%#x)", code)
	}
	acks, _ := subscribe(t, agent, "fieldkit/demo/cue/#")

	agent.Publish("fieldkit/demo/cue/w2/cmd", 1, false, "for-w2").WaitTimeout(5 * time.Second)
	agent.Publish("fieldkit/demo/cue/w1/cmd", 1, false, "for-w1").WaitTimeout(5 * time.Second)
	select {
	case m := <-got:
		if m != "fieldkit/demo/cue/w1/cmd=for-w1" {
			t.Fatalf("w1 got %s", m)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("w1 did not get its own cue")
	}

	// Its own ack goes through; at QoS 0 a write elsewhere is dropped.
	w1.Publish("fieldkit/demo/cue/w2/ack", 0, false, "forged").WaitTimeout(5 * time.Second)
	w1.Publish("fieldkit/demo/cue/w1/ack", 1, false, "ok").WaitTimeout(5 * time.Second)
	deadline := time.After(5 * time.Second)
	for {
		select {
		case m := <-acks:
			if m == "fieldkit/demo/cue/w2/ack=forged" {
				t.Fatal("w1 wrote to w2's topic")
			}
			if m == "fieldkit/demo/cue/w1/ack=ok" {
				// A QoS 1 write outside its subtree costs the client its
				// connection (MQTT 3.1.1 has no negative PUBACK).
				w1.Publish("fieldkit/demo/status", 1, false, "offline").WaitTimeout(2 * time.Second)
				waitDisconnected(t, w1)
				return
			}
		case <-deadline:
			t.Fatal("w1's own ack did not arrive")
		}
	}
}

func waitDisconnected(t *testing.T, c paho.Client) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for c.IsConnectionOpen() {
		if time.Now().After(deadline) {
			t.Fatal("client still connected after a refused QoS 1 publish")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestAuthHookInit(t *testing.T) {
	for _, cfg := range []any{
		nil,
		&AuthConfig{Prefix: "fieldkit/demo"},
		&AuthConfig{Prefix: "fieldkit/#", Users: []User{{Name: "a", Password: "b"}}},
		&AuthConfig{Prefix: "p", Users: []User{{Name: "a", Password: ""}}},
		&AuthConfig{Prefix: "p", Users: []User{{Name: "a", Password: "b"}, {Name: "a", Password: "c"}}},
		&AuthConfig{Prefix: "p", Users: []User{{Name: "a", Password: "b", Wearable: "x/#"}}},
	} {
		if _, err := New(Options{Listen: "127.0.0.1:0", Hook: new(AuthHook), HookConfig: cfg}); err == nil {
			t.Errorf("config %+v accepted", cfg)
		}
	}
}
