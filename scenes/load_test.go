package scenes

import (
	"strings"
	"testing"
	"testing/fstest"
)

func loadFiles(files map[string]string) error {
	fsys := fstest.MapFS{}
	for n, src := range files {
		fsys[n] = &fstest.MapFile{Data: []byte(src)}
	}
	r := &recorder{}
	_, err := Load(fsys, "scenes", newTargets(r, "a", "b"), "fieldkit/test")
	return err
}

func TestLoadErrors(t *testing.T) {
	ok := "steps:\n  - {at: 0s, target: a, do: \"on\"}\n"
	cases := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"unknown key", map[string]string{"x.yaml": "name: x\npolcy: queue\n" + ok},
			`scenes/x.yaml:2: unknown key "polcy"; expected one of: description, name, on_cancel, policy, scope, steps, triggers`},
		{"unknown key in step", map[string]string{"x.yaml": "name: x\nsteps:\n  - at: 0s\n    target: a\n    do: \"on\"\n    colour: red\n"},
			`scenes/x.yaml:6: unknown key "colour" in steps[0]`},
		{"unknown target", map[string]string{"x.yaml": "name: x\nsteps:\n  - {at: 0s, target: a, do: \"on\"}\n  - {at: 1s, target: strobe, do: \"on\"}\n"},
			`scenes/x.yaml:4: steps[1].target: unknown output "strobe"; configured outputs: a, b, lamp`},
		{"unknown pattern", map[string]string{"x.yaml": "name: x\nsteps:\n  - {at: 0s, target: a, do: haptic, pattern: tickle}\n"},
			`scenes/x.yaml:3: steps[0].do: unknown haptic pattern "tickle"`},
		{"target refuses action", map[string]string{"x.yaml": "name: x\nsteps:\n  - {at: 0s, target: lamp, do: color, color: \"#ff0000\"}\n"},
			`scenes/x.yaml:3: steps[0].do: output "lamp" (lamp): a lamp cannot do color`},
		{"negative at", map[string]string{"x.yaml": "name: x\nsteps:\n  - {at: -1s, target: a, do: \"on\"}\n"},
			`scenes/x.yaml:3: steps[0].at: -1s is negative`},
		{"unordered at", map[string]string{"x.yaml": "name: x\nsteps:\n  - {at: 2s, target: a, do: \"on\"}\n  - {at: 1s, target: b, do: \"on\"}\n"},
			`scenes/x.yaml:4: steps[1].at: 1s comes before the previous step's 2s`},
		{"bare number at", map[string]string{"x.yaml": "name: x\nsteps:\n  - {at: 20, target: a, do: \"on\"}\n"},
			`scenes/x.yaml:3: "20" is a whole number, expected a duration`},
		{"duplicate name", map[string]string{"x.yaml": "name: x\n" + ok, "y.yaml": "\nname: x\n" + ok},
			`scenes/y.yaml:2: name: scene "x" is already defined in scenes/x.yaml:1`},
		{"bad name", map[string]string{"x.yaml": "name: Drop Countdown\n" + ok}, `scenes/x.yaml:1: name: "Drop Countdown" is not a valid scene name`},
		{"bad policy", map[string]string{"x.yaml": "name: x\npolicy: again\n" + ok}, `scenes/x.yaml:2: policy: unknown policy "again"`},
		{"bad filter", map[string]string{"x.yaml": "name: x\ntriggers:\n  - mqtt: shop/#/start\n" + ok},
			`scenes/x.yaml:3: triggers[0].mqtt: topic filter "shop/#/start": '#' must be a whole level and the last one`},
		{"two trigger kinds", map[string]string{"x.yaml": "name: x\ntriggers:\n  - {mqtt: a, button: b}\n" + ok},
			`scenes/x.yaml:3: triggers[0]: a trigger needs exactly one of`},
		{"bad cron", map[string]string{"x.yaml": "name: x\ntriggers:\n  - cron: \"61 * * * *\"\n" + ok},
			`scenes/x.yaml:3: triggers[0].cron: cron "61 * * * *": minute: 61 is out of range 0-59`},
		{"bad daily", map[string]string{"x.yaml": "name: x\ntriggers:\n  - daily: \"7pm\"\n" + ok},
			`scenes/x.yaml:3: triggers[0].daily: daily "7pm": expected a time of day HH:MM`},
		{"match on button", map[string]string{"x.yaml": "name: x\ntriggers:\n  - {button: red, match: {a: b}}\n" + ok},
			`triggers[0].match: match only applies to mqtt and event triggers`},
		{"publish wildcard", map[string]string{"x.yaml": "name: x\nsteps:\n  - {at: 0s, publish: {topic: a/+/b}}\n"},
			`scenes/x.yaml:3: steps[0].publish.topic: topic "a/+/b": wildcards are not allowed`},
		{"publish with action", map[string]string{"x.yaml": "name: x\nsteps:\n  - {at: 0s, do: \"on\", publish: {topic: a}}\n"},
			`steps[0].do: a publish step takes no cue action`},
		{"step with two kinds", map[string]string{"x.yaml": "name: x\nsteps:\n  - {at: 0s, target: a, do: \"on\", webhook: {url: \"http://x\"}}\n"},
			`scenes/x.yaml:3: steps[0]: a step needs exactly one of target (or targets), publish or webhook`},
		{"webhook bounds", map[string]string{"x.yaml": "name: x\nsteps:\n  - at: 0s\n    webhook:\n      url: ftp://x\n      timeout: 2m\n      retries: 9\n"},
			"scenes/x.yaml:5: steps[0].webhook.url: \"ftp://x\": expected an http:// or https:// URL\n" +
				"scenes/x.yaml:6: steps[0].webhook.timeout: 2m0s: expected more than 0 and at most 1m0s\n" +
				"scenes/x.yaml:7: steps[0].webhook.retries: 9: expected 0 to 5"},
		{"no steps", map[string]string{"x.yaml": "name: x\n"}, `scenes/x.yaml:1: steps: a scene needs at least one step`},
		{"empty file", map[string]string{"x.yaml": ""}, `scenes/x.yaml:1: the file is empty`},
		{"no files", map[string]string{"README": "hi"}, `no scene files`},
		{"syntax", map[string]string{"x.yaml": "name: [x\n"}, `scenes/x.yaml:1: YAML syntax`},
		{"self loop", map[string]string{"x.yaml": "name: x\ntriggers:\n  - mqtt: shop/#\nsteps:\n  - {at: 0s, target: a, do: \"on\"}\n  - {at: 1s, publish: {topic: shop/echo}}\n"},
			`scenes/x.yaml:6: scenes would trigger each other for ever: x → x (x step 2 publishes shop/echo, which triggers x (mqtt: shop/#))`},
		{"two-scene loop via run topic", map[string]string{
			"a.yaml": "name: a\nsteps:\n  - {at: 0s, publish: {topic: fieldkit/test/scene/b/run}}\n",
			"b.yaml": "name: b\ntriggers:\n  - mqtt: shop/x\nsteps:\n  - {at: 0s, publish: {topic: shop/x/y}}\n  - {at: 1s, publish: {topic: fieldkit/test/scene/a/run}}\n"},
			`scenes/a.yaml:3: scenes would trigger each other for ever: a → b → a (a step 1 publishes fieldkit/test/scene/b/run, which is b's run topic; b step 2 publishes fieldkit/test/scene/a/run, which is a's run topic)`},
		{"three-scene loop via events and state", map[string]string{
			"a.yaml": "name: a\nsteps:\n  - {at: 0s, publish: {topic: fieldkit/test/battery/x/alert}}\n",
			"b.yaml": "name: b\ntriggers:\n  - event: battery/+/alert\nsteps:\n  - {at: 0s, target: a, do: \"on\"}\n",
			"c.yaml": "name: c\ntriggers:\n  - event: scene/b/state\nsteps:\n  - {at: 0s, publish: {topic: fieldkit/test/scene/a/run}}\n"},
			`scenes would trigger each other for ever: a → b → c → a`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := loadFiles(c.files)
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got\n%v\nwant it to contain\n%s", err, c.want)
			}
		})
	}
}

func TestLoadAcceptsChainsWithoutLoops(t *testing.T) {
	err := loadFiles(map[string]string{
		"a.yaml": "name: a\ntriggers:\n  - mqtt: shop/drop/start\nsteps:\n  - {at: 0s, publish: {topic: fieldkit/test/scene/b/run}}\n",
		"b.yaml": "name: b\ntriggers:\n  - event: scene/a/state\n    match: {state: done}\nsteps:\n  - {at: 0s, targets: [a, b], do: blink, period: 500ms, count: 3}\n  - {at: 2s, publish: {topic: shop/drop/live, passthrough: true}}\n",
	})
	if err != nil {
		t.Fatal(err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add("name: x\nsteps:\n  - {at: 0s, target: a, do: \"on\"}\n")
	f.Add("name: x\ntriggers:\n  - cron: \"*/5 * * * *\"\n  - event: a/+/b\n    match: {x.y: 1}\nsteps:\n  - {at: 1s, publish: {topic: t, payload: {a: [1]}}}\n")
	f.Add("name: x\nsteps:\n  - {at: 0s, webhook: {url: \"http://h\", body: 3, retries: 1}}\n")
	f.Add("name: x\nsteps:\n  - {at: 0s, target: a, do: \"on\"}\non_cancel:\n  - {at: 0s, target: a, do: \"off\"}\n  - {at: 1s, publish: {topic: t}}\n")
	f.Add("name: x\nsteps:\n  - {at: 0s, target: a, do: \"on\"}\non_cancel: []\n")
	r := &recorder{}
	targets := newTargets(r, "a", "b")
	f.Fuzz(func(t *testing.T, src string) {
		sc, err := Parse("f.yaml", []byte(src), targets)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "f.yaml") {
				t.Fatalf("error without the file name: %v", err)
			}
			return
		}
		if len(sc.Steps) == 0 || !nameRE.MatchString(sc.Name) {
			t.Fatalf("accepted an invalid scene: %+v", sc)
		}
		for i := 1; i < len(sc.Steps); i++ {
			if sc.Steps[i].At < sc.Steps[i-1].At {
				t.Fatal("accepted unordered steps")
			}
		}
		for i, st := range sc.cancelSteps {
			if st.At < 0 || st.At > MaxOnCancel || (i > 0 && st.At < sc.cancelSteps[i-1].At) {
				t.Fatalf("accepted on_cancel step %d at %v", i, st.At)
			}
		}
	})
}
