package main

import (
	"context"
	"testing"

	"fieldkit/drivers/cue"
	"fieldkit/drivers/mqttdev"
	"fieldkit/internal/doctor"
	"fieldkit/internal/event"
)

// nullConn is a broker link that takes everything and delivers nothing.
type nullConn struct{}

func (nullConn) Publish(context.Context, string, byte, bool, []byte) error { return nil }
func (nullConn) Handle(string, event.Handler) error                        { return nil }
func (nullConn) Prefix() string                                            { return "fieldkit/box1" }
func (nullConn) OnConnect(func())                                          {}

// An MQTT device joins the pre-show checks; one that never said it is
// online is not passed.
func TestOutputsPreShowChecks(t *testing.T) {
	d, err := mqttdev.NewDevice(nullConn{}, &mqttdev.Opts{Name: "plug", Kind: mqttdev.Tasmota, Topic: "plug"})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	s := &outputSet{targets: map[string]cue.Target{"plug": d}}
	cs := s.Checks()
	if len(cs) != 1 || cs[0].Name != "output plug" {
		t.Fatalf("checks %+v", cs)
	}
	if r := cs[0].Run(context.Background()); r.Status == doctor.OK || r.Fix == "" {
		t.Fatalf("unheard device passed: %+v", r)
	}
}
