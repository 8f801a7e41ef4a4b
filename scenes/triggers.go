package scenes

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"fieldkit/internal/bus"
	"fieldkit/internal/mqttc"
)

// mqttSubscriber is an MQTT connection whose handlers can be removed
// again (*mqttc.Conn is one).
type mqttSubscriber interface {
	Subscribe(filter string, h mqttc.Handler) (cancel func(), err error)
}

// syncTriggersLocked subscribes to the MQTT filters and bus topics the
// current set needs, and drops those it no longer needs. On a connection
// whose handlers cannot be removed (no Subscribe), a filter handled once
// stays handled and simply finds no scene after a reload.
func (e *Engine) syncTriggersLocked() {
	set := e.set.Load()
	wantBus, wantMQTT := map[string]bool{}, map[string]bool{}
	for _, sc := range set.Scenes {
		for _, tr := range sc.Triggers {
			switch {
			case tr.MQTT != "" && e.d.MQTT != nil:
				wantMQTT[tr.MQTT] = true
			case tr.busFilter() != "":
				wantBus[tr.busFilter()] = true
			}
		}
	}
	for f := range wantMQTT {
		if _, ok := e.filters[f]; ok {
			continue
		}
		h := func(ctx context.Context, m mqttc.Message) error { return e.onTrigger(f, m) }
		var cancel func()
		var err error
		if s, ok := e.d.MQTT.(mqttSubscriber); ok {
			cancel, err = s.Subscribe(f, h)
		} else {
			err = e.d.MQTT.Handle(f, h)
		}
		if err != nil {
			e.log.Error("cannot subscribe to a scene trigger", "filter", f, "err", err)
			continue
		}
		e.filters[f] = cancel
	}
	for f, cancel := range e.filters {
		if !wantMQTT[f] && cancel != nil {
			cancel()
			delete(e.filters, f)
		}
	}
	if e.d.Bus != nil {
		for f := range wantBus {
			if _, ok := e.subs[f]; ok {
				continue
			}
			sub := e.d.Bus.Subscribe(f, 64)
			e.subs[f] = sub
			e.loops.Add(1)
			go e.busLoop(f, sub)
		}
	}
	for f, sub := range e.subs {
		if !wantBus[f] {
			sub.Close()
			delete(e.subs, f)
		}
	}
	select {
	case e.schedWake <- struct{}{}:
	default:
	}
}

// checkPayload refuses payloads that are too large or, when JSON is
// expected, not JSON.
func (e *Engine) checkPayload(p []byte, wantJSON bool) error {
	if len(p) > e.cfg.maxPayload() {
		return fmt.Errorf("payload of %d bytes is larger than the %d-byte limit for scene triggers", len(p), e.cfg.maxPayload())
	}
	if wantJSON && len(bytes.TrimSpace(p)) > 0 && !json.Valid(p) {
		return fmt.Errorf("payload is not JSON; send nothing, or a JSON value such as {\"by\":\"shop\"}")
	}
	return nil
}

// onRunTopic handles <prefix>/scene/<name>/run.
func (e *Engine) onRunTopic(ctx context.Context, m mqttc.Message) error {
	name := sceneFromTopic(m.Topic)
	if err := e.commandOK(ctx, m, "run"); err != nil {
		return fmt.Errorf("scene %q: %w", name, err)
	}
	_, err := e.Fire(name, "mqtt "+m.Topic, m.Payload)
	return e.quietBusy(err)
}

// onCancelTopic handles <prefix>/scene/<name>/cancel.
func (e *Engine) onCancelTopic(ctx context.Context, m mqttc.Message) error {
	name := sceneFromTopic(m.Topic)
	if err := e.commandOK(ctx, m, "cancel"); err != nil {
		return fmt.Errorf("scene %q: %w", name, err)
	}
	_, err := e.Cancel(name, "mqtt "+m.Topic)
	return err
}

// commandOK refuses what must never run or cancel a scene: a retained
// message (the broker hands it out again on every reconnect, so it would
// act each time; the agent clears it), and an empty one (which is how a
// retained message is cleared, and is delivered to live subscribers as a
// plain message); then payloads that are too big or not JSON.
func (e *Engine) commandOK(ctx context.Context, m mqttc.Message, verb string) error {
	if m.Retained {
		if e.d.MQTT != nil && len(m.Payload) > 0 {
			ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			if err := e.d.MQTT.Publish(ctx, m.Topic, 1, true, nil); err != nil {
				e.log.Warn("cannot clear a retained scene command", "topic", m.Topic, "err", err)
			}
		}
		return fmt.Errorf("a retained %s message is ignored, and cleared (it would act again on every reconnect); publish it without retain", verb)
	}
	if len(m.Payload) == 0 {
		return fmt.Errorf("an empty %s message is ignored (clearing a retained message sends one); send a JSON value such as {}", verb)
	}
	return e.checkPayload(m.Payload, true)
}

func sceneFromTopic(t string) string {
	parts := strings.Split(t, "/")
	if len(parts) < 3 {
		return ""
	}
	return parts[len(parts)-2]
}

// quietBusy logs a fire refused by the ignore policy instead of answering
// it as an error: the sender did nothing wrong.
func (e *Engine) quietBusy(err error) error {
	if errors.Is(err, ErrBusy) {
		e.log.Info("scene fire ignored", "err", err)
		return nil
	}
	return err
}

// onTrigger handles a message on an MQTT trigger filter f: every scene
// with a trigger on exactly f (overlapping filters have their own
// handlers) whose match fits is fired.
func (e *Engine) onTrigger(f string, m mqttc.Message) error {
	if m.Retained {
		e.log.Info("retained message on a scene trigger ignored", "topic", m.Topic)
		return nil
	}
	var errs []error
	for _, sc := range e.set.Load().Scenes {
		for _, tr := range sc.Triggers {
			if tr.MQTT != f {
				continue
			}
			if err := e.checkPayload(m.Payload, len(tr.Match) > 0); err != nil {
				errs = append(errs, fmt.Errorf("scene %s: %w", sc.Name, err))
				break
			}
			ok, err := matches(tr.Match, m.Payload)
			if err != nil {
				errs = append(errs, fmt.Errorf("scene %s: %w", sc.Name, err))
				break
			}
			if !ok {
				continue
			}
			if _, err := e.Fire(sc.Name, "mqtt "+m.Topic, m.Payload); e.quietBusy(err) != nil {
				errs = append(errs, err)
			}
			break // one fire per scene per message
		}
	}
	return errors.Join(errs...)
}

// busLoop fires the scenes whose event or button trigger is f.
func (e *Engine) busLoop(f string, sub *bus.Subscription) {
	defer e.loops.Done()
	for ev := range sub.C() {
		for _, sc := range e.set.Load().Scenes {
			for _, tr := range sc.Triggers {
				if tr.busFilter() != f {
					continue
				}
				ok, err := matches(tr.Match, ev.Payload)
				if err == nil && len(ev.Payload) > e.cfg.maxPayload() {
					err = fmt.Errorf("payload of %d bytes is too large", len(ev.Payload))
				}
				if err != nil {
					e.log.Warn("bus event not usable as a scene trigger", "scene", sc.Name, "topic", ev.Topic, "err", err)
					break
				}
				if !ok {
					continue
				}
				src := "event " + ev.Topic
				if tr.Button != "" {
					src = "button " + tr.Button
				}
				if _, err := e.Fire(sc.Name, src, ev.Payload); e.quietBusy(err) != nil {
					e.log.Warn("scene not fired", "scene", sc.Name, "trigger", src, "err", err)
				}
				break
			}
		}
	}
}

// matches reports whether payload, a JSON object, has every field of want
// (dotted paths reach into nested objects). Strings compare as text, other
// values by their JSON text (25, true).
func matches(want map[string]string, payload []byte) (bool, error) {
	if len(want) == 0 {
		return true, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(payload, &obj); err != nil {
		return false, fmt.Errorf("payload is not a JSON object, and the trigger matches on its fields (%s)", fieldList(want))
	}
	for path, v := range want {
		raw, ok := lookup(obj, strings.Split(path, "."))
		if !ok {
			return false, nil
		}
		var s string
		if json.Unmarshal(raw, &s) == nil {
			if s != v {
				return false, nil
			}
			continue
		}
		if string(bytes.TrimSpace(raw)) != v {
			return false, nil
		}
	}
	return true, nil
}

func lookup(obj map[string]json.RawMessage, path []string) (json.RawMessage, bool) {
	raw, ok := obj[path[0]]
	if !ok || len(path) == 1 {
		return raw, ok
	}
	var inner map[string]json.RawMessage
	if json.Unmarshal(raw, &inner) != nil {
		return nil, false
	}
	return lookup(inner, path[1:])
}

func fieldList(m map[string]string) string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return strings.Join(out, ", ")
}

// Clock jumps (NTP at boot, a Pi starts at 1970) are handled by waking at
// least this often and re-planning; a fire more than schedGrace overdue is
// skipped, not replayed.
const (
	schedTick  = 30 * time.Second
	schedGrace = 2 * time.Minute
)

// scheduleLoop fires daily and cron triggers on the engine clock.
func (e *Engine) scheduleLoop(ctx context.Context) {
	next := map[string]time.Time{}
	for {
		now := e.clk.Now()
		type entry struct {
			scene, expr string
			tr          Trigger
		}
		live := map[string]entry{}
		for _, sc := range e.set.Load().Scenes {
			for _, tr := range sc.Triggers {
				if tr.sched != nil {
					live[sc.Name+"|"+tr.sched.String()] = entry{sc.Name, tr.sched.String(), tr}
				}
			}
		}
		var soonest time.Time
		for k, en := range live {
			t, ok := next[k]
			if !ok {
				t = en.tr.sched.Next(now)
			}
			if !now.Before(t) {
				if now.Sub(t) < schedGrace {
					if _, err := e.Fire(en.scene, "schedule "+en.expr, nil); e.quietBusy(err) != nil {
						e.log.Warn("scheduled scene not fired", "scene", en.scene, "err", err)
					}
				} else {
					e.log.Warn("scheduled fire skipped: the clock jumped past it", "scene", en.scene, "due", t)
				}
				t = en.tr.sched.Next(now)
			}
			next[k] = t
			if soonest.IsZero() || t.Before(soonest) {
				soonest = t
			}
		}
		for k := range next {
			if _, ok := live[k]; !ok {
				delete(next, k)
			}
		}
		if !soonest.IsZero() {
			d := min(soonest.Sub(now), schedTick)
			t := e.clk.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-e.schedWake:
				t.Stop()
			case <-t.C():
			}
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-e.schedWake:
		}
	}
}
