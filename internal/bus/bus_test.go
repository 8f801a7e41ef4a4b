package bus

import (
	"sync"
	"testing"
	"time"
)

func TestPublishSubscribe(t *testing.T) {
	b := New(nil)
	s := b.Subscribe("battery/+/alert", 4)
	other := b.Subscribe("printer/#", 4)
	b.Publish("battery/rig1/alert", []byte(`{"level":"warn"}`))
	b.Publish("battery/rig1/state", []byte(`x`))
	select {
	case ev := <-s.C():
		if ev.Topic != "battery/rig1/alert" || string(ev.Payload) != `{"level":"warn"}` {
			t.Fatalf("got %+v", ev)
		}
	case <-time.After(time.Second):
		t.Fatal("no event")
	}
	select {
	case ev := <-s.C():
		t.Fatalf("unexpected %+v", ev)
	default:
	}
	select {
	case ev := <-other.C():
		t.Fatalf("unexpected %+v", ev)
	default:
	}
	s.Close()
	s.Close()
	b.Publish("battery/rig1/alert", nil)
	if _, ok := <-s.C(); ok {
		t.Fatal("closed subscription received")
	}
}

func TestFullSubscriberDropsAndCounts(t *testing.T) {
	b := New(nil)
	s := b.Subscribe("#", 1)
	b.Publish("a", nil)
	b.Publish("b", nil)
	if b.Dropped() != 1 {
		t.Fatalf("dropped = %d, want 1", b.Dropped())
	}
	if ev := <-s.C(); ev.Topic != "a" {
		t.Fatalf("kept %q, want the first", ev.Topic)
	}
}

func TestConcurrent(t *testing.T) {
	b := New(nil)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			s := b.Subscribe("x/#", 16)
			for j := 0; j < 100; j++ {
				select {
				case <-s.C():
				default:
				}
			}
			s.Close()
		}()
		go func() {
			defer wg.Done()
			for j := 0; j < 100; j++ {
				b.Publish("x/y", nil)
			}
		}()
	}
	wg.Wait()
}
