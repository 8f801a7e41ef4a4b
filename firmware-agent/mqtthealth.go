package main

import (
	"context"
	"fmt"
	"time"

	"fieldkit/internal/doctor"
	"fieldkit/internal/health"
	"fieldkit/internal/mqttc"
)

// reportMQTT sets the health of the broker link (part mqtt) and of what
// needs it (part mqtt-mirror) from the connection's state now. It reads
// the state under a lock rather than taking it as arguments, so that two
// reports racing cannot leave an older state behind.
func (a *app) reportMQTT() {
	if a.mqtt == nil {
		return
	}
	a.mqttHealth.Lock()
	defer a.mqttHealth.Unlock()
	st := a.mqtt.Status()
	mqttState, mqttReason := mqttHealth(a.cfg.Box, a.brokerAddr(), st)
	a.health.Set("mqtt", mqttState, mqttReason)
	if st.Connected {
		a.health.Set("mqtt-mirror", health.OK, "")
	} else {
		a.health.Set("mqtt-mirror", health.Degraded, "events are not sent to MQTT while the broker link is down")
	}
}

func mqttHealth(box, broker string, st mqttc.Status) (health.State, string) {
	d := st.Duplicate
	switch {
	case d != nil && d.Refused:
		return health.Failed, fmt.Sprintf("box id %q is in use by another agent (%s); this one stays off the broker; give each box its own box: id", box, d.Other)
	case !st.Connected:
		return health.Degraded, st.Reason
	case d != nil:
		return health.Degraded, fmt.Sprintf("another agent (%s) with box id %q tried to connect at %s; give each box its own box: id", d.Other, box, d.Seen.Format(time.RFC3339))
	}
	return health.OK, "connected to " + broker
}

// checkBoxID fails while another agent uses this box id on the broker.
func checkBoxID(_ context.Context, a *app) doctor.Result {
	if a == nil || a.mqtt == nil {
		return doctor.Pass("checked once the agent runs")
	}
	d := a.mqtt.Status().Duplicate
	if d == nil {
		return doctor.Pass(fmt.Sprintf("%q is this agent's alone (%s)", a.cfg.Box, a.mqtt.Instance()))
	}
	fix := "give each box its own box: id in its config and restart it"
	if d.Refused {
		return doctor.Failf(fix, "box id %q is taken by another agent (%s); this one stays off the broker", a.cfg.Box, d.Other)
	}
	return doctor.Failf(fix, "another agent (%s) with box id %q tried to connect at %s", d.Other, a.cfg.Box, d.Seen.Format(time.RFC3339))
}
