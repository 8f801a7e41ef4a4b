package broker

import (
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// No other account, nor an anonymous client on an open broker, can take
// the agent's client id over: the attempt is refused and the agent keeps
// its connection and its messages.
func TestReservedClientIDTakeoverRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Options
		// who tries to take the agent's client id over
		tries [][2]string
		agent [2]string
	}{
		{name: "open", o: Options{Reserve: &Reserved{ClientID: "fieldkit-demo", Username: "fieldkit-agent", Password: "s3cret"}},
			tries: [][2]string{{"", ""}, {"fieldkit-agent", "guess"}, {"someone", "x"}}, agent: [2]string{"fieldkit-agent", "s3cret"}},
		{name: "accounts", o: Options{Hook: new(AuthHook), HookConfig: &AuthConfig{Prefix: "fieldkit/demo", Users: []User{
			{Name: "agent", Password: "agent-pw"}, {Name: "venue", Password: "venue-pw"}, {Name: "w1", Password: "w1-pw", Wearable: "w1"},
		}}, Reserve: &Reserved{ClientID: "fieldkit-demo", Username: "agent", Password: "agent-pw"}},
			tries: [][2]string{{"w1", "w1-pw"}, {"venue", "venue-pw"}, {"agent", "wrong"}}, agent: [2]string{"agent", "agent-pw"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.Listen = "127.0.0.1:0"
			b, err := New(tc.o)
			if err != nil {
				t.Fatal(err)
			}
			if err := b.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { b.Close() })
			url := "tcp://" + b.Addr()

			var lost atomic.Int32
			o := paho.NewClientOptions().AddBroker(url).SetClientID("fieldkit-demo").
				SetUsername(tc.agent[0]).SetPassword(tc.agent[1]).SetAutoReconnect(false).
				SetConnectionLostHandler(func(paho.Client, error) { lost.Add(1) })
			agent := paho.NewClient(o)
			if tok := agent.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
				t.Fatalf("agent connect: %v", tok.Error())
			}
			defer agent.Disconnect(50)
			got, _ := subscribe(t, agent, "fieldkit/demo/ping")

			for _, who := range tc.tries {
				c, err := dial(url, who[0], who[1], "fieldkit-demo")
				if err == nil {
					c.Disconnect(50)
					t.Fatalf("user %q took the agent's client id", who[0])
				}
			}
			// The agent was not knocked off: it still gets its messages.
			agent.Publish("fieldkit/demo/ping", 1, false, "still-here").WaitTimeout(5 * time.Second)
			select {
			case m := <-got:
				if m != "fieldkit/demo/ping=still-here" {
					t.Fatalf("agent got %s", m)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the agent no longer receives its messages")
			}
			if n := lost.Load(); n != 0 || !agent.IsConnectionOpen() {
				t.Fatalf("agent lost its connection %d times", n)
			}
			// Other client ids still follow the ordinary rules.
			c, err := dial(url, tc.tries[0][0], tc.tries[0][1], "other-client")
			if err != nil {
				t.Fatalf("an ordinary client with another id was refused: %v", err)
			}
			c.Disconnect(50)
		})
	}
}

// The agent's further client ids (its venue connection) are its account's
// only: the agent gets in with them, no one else does.
func TestReservedOtherClientIDs(t *testing.T) {
	b, err := New(Options{Listen: "127.0.0.1:0", Reserve: &Reserved{ClientID: "fieldkit-demo",
		Others: []string{"fieldkit-venue-hall-demo"}, Username: "fieldkit-agent", Password: "s3cret"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	url := "tcp://" + b.Addr()
	if c, err := dial(url, "someone", "x", "fieldkit-venue-hall-demo"); err == nil {
		c.Disconnect(50)
		t.Fatal("another account took the agent's venue client id")
	}
	c, err := dial(url, "fieldkit-agent", "s3cret", "fieldkit-venue-hall-demo")
	if err != nil {
		t.Fatalf("the agent's venue connection was refused: %v", err)
	}
	defer c.Disconnect(50)
	got, _ := subscribe(t, c, "fieldkit/venue/hall/box/demo/status")
	c.Publish("fieldkit/venue/hall/box/demo/status", 1, false, "online").WaitTimeout(5 * time.Second)
	select {
	case m := <-got:
		if m != "fieldkit/venue/hall/box/demo/status=online" {
			t.Fatalf("got %s", m)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the agent's venue connection may not publish and subscribe")
	}
}
