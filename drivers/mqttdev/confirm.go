package mqttdev

import (
	"context"
	"fmt"
	"sort"
	"time"

	"fieldkit/drivers/cue"
	"fieldkit/internal/event"
)

// DefaultDeadline is how long a device has to confirm a command before
// it is sent once more, and again before the command is reported failed.
const DefaultDeadline = time.Second

// Result is how one command to a device ended.
type Result struct {
	Output string `json:"output"`
	State  State  `json:"state"`
	// Status is confirmed or failed.
	Status  string        `json:"status"`
	Sends   int           `json:"sends"`
	Latency time.Duration `json:"latency_ns,omitempty"`
	Error   string        `json:"error,omitempty"`
}

// Feedback is what the device said about itself, for the status API.
type Feedback struct {
	// Link is online, offline or unknown (nothing heard yet).
	Link      string     `json:"link"`
	LinkSince *time.Time `json:"link_since,omitempty"`
	Commanded *State     `json:"last_commanded,omitempty"`
	Confirmed *State     `json:"last_confirmed,omitempty"`
	// Pending is true while a command waits for its confirmation.
	Pending bool    `json:"pending"`
	P50Ms   float64 `json:"confirm_p50_ms,omitempty"`
	Last    *Result `json:"last_result,omitempty"`
}

// pending is the command waiting for its confirmation.
type pending struct {
	st    State
	seq   int64
	msgs  []Message
	sent  time.Time
	sends int
	// planned is the scene step's time (zero for none).
	planned time.Time
	rep     cue.Reporter
	applied time.Time
}

const latWindow = 64

// onReport takes one message on the device's feedback topics.
func (d *Device) onReport(_ context.Context, m event.Message) error {
	r, ok := ParseReport(d.o, d.c.Prefix(), m.Topic, m.Payload)
	if !ok {
		// Never an error: the connection would answer it on the
		// device's own topic tree.
		d.log.Debug("MQTT device message not understood", "topic", m.Topic)
		return nil
	}
	now := d.clk.Now()
	var res *Result
	back := false
	d.mu.Lock()
	if r.Online != nil {
		link := map[bool]string{true: "online", false: "offline"}[*r.Online]
		if link != d.fb.Link {
			back = link == "online" && d.st.Action != ""
			d.fb.Link, d.fb.LinkSince = link, &now
		}
	}
	if p := d.wait; p != nil {
		switch {
		case d.o.Kind == Shelly && r.Reply != nil && *r.Reply == p.seq && r.ReplyErr != "":
			res = d.finishLocked("failed", "device answered: "+r.ReplyErr, now)
		case confirms(d.o, p.st, p.seq, r):
			res = d.finishLocked("confirmed", "", now)
		}
	}
	d.mu.Unlock()
	if res != nil {
		d.report(*res)
	}
	if back {
		// The device came back (powered up, rejoined the mesh): it is
		// told the state it should have now.
		d.log.Info("MQTT device is back online; re-asserting its state")
		d.reassert()
	}
	return nil
}

// finishLocked ends the pending command.
func (d *Device) finishLocked(status, why string, now time.Time) *Result {
	p := d.wait
	d.wait = nil
	res := Result{Output: d.o.Name, State: p.st, Status: status, Sends: p.sends, Error: why}
	if status == "confirmed" {
		res.Latency = now.Sub(p.sent)
		st := p.st
		d.fb.Confirmed = &st
		d.lat = append(d.lat, res.Latency)
		if len(d.lat) > latWindow {
			d.lat = d.lat[1:]
		}
		// A command that waited for the broker (the safe state sent
		// at start, before the link was up) or needed a second send
		// says nothing about how far ahead to send a cue.
		if !p.applied.IsZero() && p.sends == 1 && p.sent.Sub(p.applied) < d.o.Deadline {
			d.leadLat = append(d.leadLat, now.Sub(p.applied))
			if len(d.leadLat) > latWindow {
				d.leadLat = d.leadLat[1:]
			}
			d.lead.Store(int64(median(d.leadLat)))
		}
		d.o.Metrics.Confirmed(d.o.Name, string(d.o.Kind), p.planned, p.sent, now)
	}
	d.fb.Last = &res
	// Told here, under the lock, so that a newer command's outcome
	// cannot overtake it; reporters do not block.
	cue.Report(p.rep, d.o.Name, status, now, why)
	return &res
}

// median of ds (the upper one of an even count), which it does not change.
func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// report hands a result to the caller's hook, and a failure to the bus.
func (d *Device) report(res Result) {
	if d.o.OnResult != nil {
		d.o.OnResult(res)
	}
	if res.Status == "failed" {
		d.log.Error("MQTT device did not confirm a command", "sends", res.Sends, "err", res.Error)
		if d.o.Bus != nil {
			d.o.Bus.Publish("cue/"+d.o.Name+"/alert", mustJSON(struct {
				Output string `json:"output"`
				Kind   string `json:"kind"`
				Reason string `json:"reason"`
				State  State  `json:"state"`
				Sends  int    `json:"sends"`
			}{d.o.Name, string(d.o.Kind), res.Error, res.State, res.Sends}))
		}
	}
}

// sent starts waiting for the confirmation of msgs, which put the device
// in st; a command still waiting is superseded, not failed.
func (d *Device) sent(b batch, start time.Time) {
	if d.o.Deadline < 0 {
		return
	}
	st, seq, msgs := b.st, b.seq, b.msgs
	d.mu.Lock()
	c := st
	d.fb.Commanded = &c
	// The same state sent again while its first send is unconfirmed (a
	// re-assert on reconnect racing a cue) is one command: its latency
	// counts from the first send, since the device may be answering that.
	rep := b.rep
	if w := d.wait; w != nil && w.st == st && w.sent.Before(start) {
		start = w.sent
		if rep == nil {
			rep = w.rep
		} else {
			cue.Report(w.rep, d.o.Name, cue.Superseded, start, "")
		}
	} else if w != nil {
		cue.Report(w.rep, d.o.Name, cue.Superseded, start, "")
	}
	applied := b.applied
	if w := d.wait; w != nil && w.st == st && applied.IsZero() {
		applied = w.applied
	}
	d.wait = &pending{st: st, seq: seq, msgs: msgs, sent: start, sends: 1, planned: b.planned, rep: rep, applied: applied}
	cue.Report(rep, d.o.Name, cue.Sent, start, "")
	d.mu.Unlock()
	d.armDeadline()
}

func (d *Device) armDeadline() {
	select {
	case d.arm <- struct{}{}:
	default:
	}
}

// expired runs when the deadline passed: send once more, then fail.
func (d *Device) expired(ctx context.Context) {
	d.mu.Lock()
	p := d.wait
	if p == nil || d.clk.Now().Sub(p.sent) < d.o.Deadline*time.Duration(p.sends) {
		d.mu.Unlock()
		return
	}
	if p.sends < 2 {
		p.sends++
		msgs := p.msgs
		d.mu.Unlock()
		d.log.Warn("MQTT device did not confirm a command in time; sending it once more", "deadline", d.o.Deadline)
		d.publish(ctx, msgs)
		d.armDeadline()
		return
	}
	why := fmt.Sprintf("no confirmation within %v after %d sends", d.o.Deadline, p.sends)
	if d.fb.Link == "offline" {
		why += fmt.Sprintf("; device offline since %s", d.fb.LinkSince.UTC().Format(time.RFC3339))
	} else if d.fb.Link == "unknown" {
		why += "; device never reported its availability"
	}
	res := d.finishLocked("failed", why, d.clk.Now())
	d.mu.Unlock()
	d.report(*res)
}

func (d *Device) feedbackLocked() Feedback {
	f := d.fb
	f.Pending = d.wait != nil
	if len(d.lat) > 0 {
		f.P50Ms = float64(median(d.lat).Microseconds()) / 1000
	}
	return f
}

// Readiness is a device's pre-show verdict. Level is "ok", "warn" or
// "fail"; a warn or fail says in Fix what the crew should do. (The agent
// turns it into a pre-show check; a driver does not import the checks.)
type Readiness struct {
	Level  string
	Detail string
	Fix    string
}

// PreShow is the device's pre-show verdict: it must be online and have
// confirmed a command (the safe state the agent sends on start counts).
func (d *Device) PreShow() Readiness {
	d.mu.Lock()
	f := d.feedbackLocked()
	d.mu.Unlock()
	what := fmt.Sprintf("%s %s", d.o.Kind, d.o.Topic)
	switch {
	case d.o.Deadline < 0:
		return Readiness{Level: "ok", Detail: what + ": read-back is off"}
	case f.Link == "offline":
		return Readiness{Level: "fail", Fix: "power the device and check its network (Wi-Fi, or the Zigbee mesh)",
			Detail: fmt.Sprintf("%s offline since %s", what, f.LinkSince.UTC().Format(time.RFC3339))}
	case f.Last != nil && f.Last.Status == "failed":
		return Readiness{Level: "fail", Fix: "check the device's topic in the config and that it is powered; then send a test cue",
			Detail: fmt.Sprintf("%s: last command failed: %s", what, f.Last.Error)}
	case f.Confirmed == nil:
		return Readiness{Level: "warn", Fix: "send a test cue to it from the crew page",
			Detail: fmt.Sprintf("%s (%s): no command confirmed yet", what, f.Link)}
	}
	return Readiness{Level: "ok", Detail: fmt.Sprintf("%s online, confirms in %.0f ms (p50)", what, f.P50Ms)}
}
