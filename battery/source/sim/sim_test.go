package sim

import (
	"context"
	"math"
	"testing"
	"time"

	"fieldkit/battery/source"
	"fieldkit/internal/clock"
)

var tStart = time.Date(2025, 6, 1, 18, 0, 0, 0, time.UTC)

func TestSimDrains(t *testing.T) {
	clk := clock.NewFake(tStart)
	c := Config{StartPercent: 50, Drain: 20 * time.Minute}
	pk, err := c.Pack(source.PackSpec{})
	if err != nil {
		t.Fatal(err)
	}
	s := NewSource(c, "demo", pk, clk)
	first, _ := s.Poll(context.Background())
	clk.Advance(2 * time.Minute) // a tenth of the drain time: 10 points
	later, _ := s.Poll(context.Background())
	if s.m.Percent() < 39.9 || s.m.Percent() > 40.1 {
		t.Fatalf("after 2 of 20 minutes the pack is at %.2f %%, want 40", s.m.Percent())
	}
	if !(later.Volts < first.Volts) || later.Amps <= 0 || math.Abs(later.Watts-294) > 10 {
		t.Fatalf("first %+v later %+v", first, later)
	}
	clk.Advance(time.Hour)
	flat, _ := s.Poll(context.Background())
	if flat.Volts != 0 {
		t.Fatalf("an empty pack reads %v V", flat.Volts)
	}
}
