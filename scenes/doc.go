// Package scenes is the cue scene engine: declarative timelines of steps
// loaded from YAML files, fired by triggers (MQTT topics, HTTP, buttons,
// schedules, bus events), run on one injected clock so that every action
// of a step starts together, with planned against actual time recorded
// for each step and exported as lateness.
//
// A scene file holds one scene:
//
//	name: drop-countdown
//	policy: restart          # when fired while running: restart | ignore | queue
//	triggers:
//	  - mqtt: shop/drop/start
//	  - button: big-red
//	  - daily: "19:30"
//	  - cron: "*/30 18-22 * * 5"
//	  - event: battery/+/alert
//	    match: {level: warn}
//	steps:
//	  - {at: 0s, target: strip, do: effect, effect: countdown, for: 60s}
//	  - {at: 30s, targets: [motor, presenter], do: haptic, pattern: short}
//	  - {at: 60s, publish: {topic: shop/drop/live, passthrough: true}}
//	  - {at: 60s, webhook: {url: "http://127.0.0.1:9000/live", timeout: 2s, retries: 2}}
//	on_cancel:               # after a cancel; left out: every output used is switched off
//	  - {at: 0s, target: strip, do: "off"}
//
// Every scene can also be run and cancelled on <prefix>/scene/<name>/run
// and .../cancel (a JSON payload; retained and empty messages never act),
// and through the HTTP API; its state is retained on
// <prefix>/scene/<name>/state and mirrored on the event bus. Fires that
// cannot start wait as requests (see Fire); too many are refused with a
// Refusal.
package scenes
