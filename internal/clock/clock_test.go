package clock

import (
	"testing"
	"time"
)

func TestFakeFiresInOrder(t *testing.T) {
	f := NewFake(time.Unix(1000, 0))
	a := f.NewTimer(2 * time.Second)
	b := f.NewTimer(1 * time.Second)
	f.Advance(1500 * time.Millisecond)
	select {
	case got := <-b.C():
		if want := time.Unix(1001, 0); !got.Equal(want) {
			t.Fatalf("b fired at %v, want %v", got, want)
		}
	default:
		t.Fatal("b did not fire")
	}
	select {
	case <-a.C():
		t.Fatal("a fired early")
	default:
	}
	if a.Stop() != true {
		t.Fatal("Stop on armed timer reported false")
	}
	f.Advance(time.Hour)
	select {
	case <-a.C():
		t.Fatal("stopped timer fired")
	default:
	}
	if !f.Now().Equal(time.Unix(1000, 0).Add(time.Hour + 1500*time.Millisecond)) {
		t.Fatalf("now = %v", f.Now())
	}
}

func TestWaitForTimers(t *testing.T) {
	f := NewFake(time.Unix(0, 0))
	go func() {
		time.Sleep(10 * time.Millisecond)
		f.NewTimer(time.Second)
	}()
	if !f.WaitForTimers(1, 5*time.Second) {
		t.Fatal("timer never armed")
	}
	if f.WaitForTimers(2, 20*time.Millisecond) {
		t.Fatal("reported a second timer that does not exist")
	}
}

func TestOffset(t *testing.T) {
	f := NewFake(time.Unix(1000, 0))
	o := Offset(f, 80*time.Millisecond)
	if got := o.Now().Sub(f.Now()); got != 80*time.Millisecond {
		t.Fatalf("offset clock is %v ahead, want 80ms", got)
	}
	tm := o.NewTimer(time.Second)
	f.Advance(time.Second)
	select {
	case <-tm.C():
	default:
		t.Fatal("timer of the offset clock did not fire with its base")
	}
	if d := o.Since(f.Now()); d != 80*time.Millisecond {
		t.Fatalf("Since = %v", d)
	}
}
