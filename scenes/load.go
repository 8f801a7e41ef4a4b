package scenes

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"fieldkit/drivers/cue"
	"fieldkit/internal/confutil"
	"fieldkit/internal/topic"
	"fieldkit/scenes/schedule"
)

// Set is a validated collection of scenes, swapped as a whole on reload.
type Set struct {
	Scenes []*Scene // sorted by name
	byName map[string]*Scene
}

// Get returns the scene called name.
func (s *Set) Get(name string) (*Scene, bool) {
	if s == nil {
		return nil, false
	}
	sc, ok := s.byName[name]
	return sc, ok
}

// Names lists the scene names in order.
func (s *Set) Names() []string {
	var out []string
	if s != nil {
		for _, sc := range s.Scenes {
			out = append(out, sc.Name)
		}
	}
	return out
}

// ErrNoScenes is returned when a directory holds no scene files.
var ErrNoScenes = errors.New("no scene files (*.yaml)")

// Load reads every *.yaml and *.yml file at the top of fsys, one scene per
// file, and validates them against the outputs in targets. dir is how the
// files are named in messages ("scenes" gives "scenes/drop.yaml:12: ...").
// prefix is the MQTT topic prefix, used to find scenes that trigger each
// other. Every problem in every file is reported, each with file:line.
func Load(fsys fs.FS, dir string, targets map[string]cue.Target, prefix string) (*Set, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("scenes %s: %w", dir, err)
	}
	var lines []string
	set := &Set{byName: map[string]*Scene{}}
	for _, e := range entries {
		ext := path.Ext(e.Name())
		if e.IsDir() || (ext != ".yaml" && ext != ".yml") || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		data, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			lines = append(lines, fmt.Sprintf("%s: %v", path.Join(dir, e.Name()), err))
			continue
		}
		sc, err := Parse(path.Join(dir, e.Name()), data, targets)
		if err != nil {
			lines = append(lines, errLines(err)...)
			continue
		}
		if prev, dup := set.byName[sc.Name]; dup {
			lines = append(lines, fmt.Sprintf("%s:%d: name: scene %q is already defined in %s:%d; scene names must be unique",
				sc.File, sc.doc.Line("name"), sc.Name, prev.File, prev.doc.Line("name")))
			continue
		}
		set.byName[sc.Name] = sc
		set.Scenes = append(set.Scenes, sc)
	}
	if len(lines) == 0 && len(set.Scenes) == 0 {
		return nil, fmt.Errorf("scenes %s: %w", dir, ErrNoScenes)
	}
	sort.Slice(set.Scenes, func(i, j int) bool { return set.Scenes[i].Name < set.Scenes[j].Name })
	if len(lines) == 0 {
		lines = append(lines, findCycles(set, prefix)...)
	}
	if len(lines) > 0 {
		return nil, &confutil.Error{Lines: lines}
	}
	return set, nil
}

// CheckButtons reports, at file:line, every trigger on a button that is
// not among buttons (the configured buttons' names): such a scene would
// wait for a press that can never come.
func (s *Set) CheckButtons(buttons []string) error {
	var lines []string
	for _, sc := range s.Scenes {
		for i, t := range sc.Triggers {
			if t.Button == "" || slices.Contains(buttons, t.Button) {
				continue
			}
			known := "none is configured; add it under buttons:"
			if len(buttons) > 0 {
				known = "expected one of: " + strings.Join(buttons, ", ")
			}
			path := fmt.Sprintf("triggers[%d].button", i)
			lines = append(lines, fmt.Sprintf("%s:%d: %s: no button named %q; %s", sc.File, sc.doc.Line(path), path, t.Button, known))
		}
	}
	if len(lines) > 0 {
		return &confutil.Error{Lines: lines}
	}
	return nil
}

func errLines(err error) []string {
	var ce *confutil.Error
	if errors.As(err, &ce) {
		return ce.Lines
	}
	return []string{err.Error()}
}

// Parse decodes and validates one scene file.
func Parse(file string, data []byte, targets map[string]cue.Target) (*Scene, error) {
	sc := &Scene{}
	doc, err := confutil.Decode(file, data, sc)
	if err != nil {
		return nil, err
	}
	if doc.Root == nil {
		return nil, fmt.Errorf("%s:1: the file is empty; expected a scene with name, triggers and steps", file)
	}
	sc.File, sc.doc = file, doc
	p := confutil.NewProblems()
	sc.validate(p, targets)
	if err := doc.Err(p); err != nil {
		return nil, err
	}
	return sc, nil
}

var (
	nameRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)
	buttonRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)
)

func (sc *Scene) validate(p *confutil.Problems, targets map[string]cue.Target) {
	if !nameRE.MatchString(sc.Name) {
		p.Addf("name", "%q is not a valid scene name; expected 1-64 lower-case letters, digits, '-' or '_' (it is part of MQTT topics and URLs)", sc.Name)
	}
	switch sc.Policy {
	case "":
		sc.Policy = DefaultPolicy
	case Restart, Ignore, Queue:
	default:
		p.Addf("policy", "unknown policy %q; expected restart, ignore or queue", sc.Policy)
	}
	switch sc.Scope {
	case "":
		sc.Scope = ScopeBox
	case ScopeBox, ScopeVenue:
	default:
		p.Addf("scope", "unknown scope %q; expected box or venue", sc.Scope)
	}
	for i := range sc.Triggers {
		sc.Triggers[i].validate(p.At(fmt.Sprintf("triggers[%d]", i)))
	}
	if len(sc.Steps) == 0 {
		p.Addf("steps", "a scene needs at least one step")
	}
	var prev time.Duration
	for i := range sc.Steps {
		st := &sc.Steps[i]
		sp := p.At(fmt.Sprintf("steps[%d]", i))
		switch {
		case st.At < 0:
			sp.Addf("at", "%v is negative; steps run at or after the start (at: 0s)", st.At)
		case st.At < prev:
			sp.Addf("at", "%v comes before the previous step's %v; list steps in time order", st.At, prev)
		default:
			prev = st.At
		}
		st.validate(sp, targets)
	}
	prev = 0
	for i := range sc.OnCancel {
		st := &sc.OnCancel[i]
		sp := p.At(fmt.Sprintf("on_cancel[%d]", i))
		switch {
		case st.At < 0:
			sp.Addf("at", "%v is negative; on_cancel steps run at or after the cancel (at: 0s)", st.At)
		case st.At > MaxOnCancel:
			sp.Addf("at", "%v is too late; on_cancel steps must be due within %v of the cancel", st.At, MaxOnCancel)
		case st.At < prev:
			sp.Addf("at", "%v comes before the previous step's %v; list steps in time order", st.At, prev)
		default:
			prev = st.At
		}
		st.validate(sp, targets)
	}
	sc.cancelSteps = sc.OnCancel
	if !hasKey(sc.doc, "on_cancel") {
		sc.cancelSteps = defaultOnCancel(sc.Steps, targets)
	}
}

// MaxOnCancel bounds when on_cancel steps may be due: a cancel is asked
// for to stop the show, and a restart waits for it.
const MaxOnCancel = 10 * time.Second

// defaultOnCancel is the on_cancel of a scene that has none: one step
// switching off every output its steps use (those that can be off).
func defaultOnCancel(steps []Step, targets map[string]cue.Target) []Step {
	off := cue.Action{Do: cue.Off}
	var names []string
	seen := map[string]bool{}
	for _, st := range steps {
		for _, n := range st.targets {
			if t, ok := targets[n]; ok && !seen[n] && t.Check(off) == nil {
				seen[n] = true
				names = append(names, n)
			}
		}
	}
	if len(names) == 0 {
		return nil
	}
	return []Step{{Targets: names, Action: off, targets: names}}
}

// hasKey reports whether the scene file sets key at its top level.
func hasKey(doc *confutil.Doc, key string) bool {
	if doc == nil || doc.Root == nil {
		return false
	}
	n := doc.Root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	if n.Kind != yaml.MappingNode {
		return false
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return true
		}
	}
	return false
}

func (t *Trigger) validate(p *confutil.Problems) {
	n := 0
	for _, s := range []string{t.MQTT, t.Event, t.Button, t.Daily, t.Cron} {
		if s != "" {
			n++
		}
	}
	if n != 1 {
		p.Addf("", "a trigger needs exactly one of mqtt, event, button, daily or cron (found %d)", n)
		return
	}
	var err error
	switch {
	case t.MQTT != "":
		err = topic.ValidFilter(t.MQTT)
		if err == nil && strings.HasPrefix(t.MQTT, "$") {
			err = fmt.Errorf("topic filter %q: $-topics belong to the broker", t.MQTT)
		}
		if err != nil {
			p.Addf("mqtt", "%v", err)
		}
	case t.Event != "":
		if err = topic.ValidFilter(t.Event); err != nil {
			p.Addf("event", "%v", err)
		}
	case t.Button != "":
		if !buttonRE.MatchString(t.Button) {
			p.Addf("button", "%q is not a button name; expected the name of a configured button", t.Button)
		}
	case t.Daily != "":
		if t.sched, err = schedule.Daily(t.Daily); err != nil {
			p.Addf("daily", "%v", err)
		}
	case t.Cron != "":
		if t.sched, err = schedule.Parse(t.Cron); err != nil {
			p.Addf("cron", "%v", err)
		}
	}
	if len(t.Match) > 0 && t.MQTT == "" && t.Event == "" {
		p.Addf("match", "match only applies to mqtt and event triggers (their JSON payload)")
	}
	for k := range t.Match {
		if k == "" || strings.HasPrefix(k, ".") || strings.HasSuffix(k, ".") || strings.Contains(k, "..") {
			p.Addf("match", "field %q: expected a field name, or a dotted path such as battery.level", k)
		}
	}
}

func (st *Step) validate(p *confutil.Problems, targets map[string]cue.Target) {
	kinds := 0
	if st.Target != "" || st.Targets != nil {
		kinds++
	}
	if st.Publish != nil {
		kinds++
	}
	if st.Webhook != nil {
		kinds++
	}
	if kinds != 1 {
		p.Addf("", "a step needs exactly one of target (or targets), publish or webhook")
		return
	}
	switch {
	case st.Publish != nil:
		st.noAction(p, "publish")
		st.Publish.validate(p.At("publish"))
	case st.Webhook != nil:
		st.noAction(p, "webhook")
		st.Webhook.validate(p.At("webhook"))
	default:
		st.validateCue(p, targets)
	}
}

func (st *Step) noAction(p *confutil.Problems, what string) {
	if st.Action != (cue.Action{}) {
		p.Addf("do", "a %s step takes no cue action (do, pattern, level...); put the action in its own step with a target", what)
	}
}

func (st *Step) validateCue(p *confutil.Problems, targets map[string]cue.Target) {
	if st.Target != "" && st.Targets != nil {
		p.Addf("targets", "set target or targets, not both")
		return
	}
	names := st.Targets
	key := "targets"
	if st.Target != "" {
		names, key = []string{st.Target}, "target"
	}
	if len(names) == 0 {
		p.Addf(key, "empty list; name at least one output")
		return
	}
	if err := st.Action.Validate(); err != nil {
		p.Addf("do", "%v", err)
		return
	}
	seen := map[string]bool{}
	for i, n := range names {
		at := key
		if key == "targets" {
			at = fmt.Sprintf("targets[%d]", i)
		}
		if seen[n] {
			p.Addf(at, "output %q is listed twice", n)
			continue
		}
		seen[n] = true
		t, ok := targets[n]
		if !ok {
			p.Addf(at, "unknown output %q; configured outputs: %s", n, targetNames(targets))
			continue
		}
		if err := t.Check(st.Action); err != nil {
			p.Addf("do", "output %q (%s): %v", n, t.Kind(), err)
		}
	}
	st.targets = names
}

func targetNames(targets map[string]cue.Target) string {
	if len(targets) == 0 {
		return "(none)"
	}
	names := make([]string, 0, len(targets))
	for n := range targets {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

func (pb *Publish) validate(p *confutil.Problems) {
	if err := topic.ValidName(pb.Topic); err != nil {
		p.Addf("topic", "%v", err)
	}
	if pb.QoS < 0 || pb.QoS > 2 {
		p.Addf("qos", "%d: expected 0, 1 or 2", pb.QoS)
	}
	var err error
	if pb.body, err = encodeBody(pb.Payload); err != nil {
		p.Addf("payload", "%v", err)
	}
}

func (w *Webhook) validate(p *confutil.Problems) {
	u, err := url.Parse(w.URL)
	switch {
	case w.URL == "":
		p.Addf("url", "missing; expected e.g. http://10.0.0.5:8000/hooks/live")
	case err != nil:
		p.Addf("url", "%q is not a URL: %v", w.URL, err)
	case u.Scheme != "http" && u.Scheme != "https":
		p.Addf("url", "%q: expected an http:// or https:// URL", w.URL)
	case u.Host == "":
		p.Addf("url", "%q has no host", w.URL)
	}
	if w.Timeout == 0 {
		w.Timeout = DefaultWebhookTimeout
	}
	if w.Timeout < 0 || w.Timeout > MaxWebhookTimeout {
		p.Addf("timeout", "%v: expected more than 0 and at most %v", w.Timeout, MaxWebhookTimeout)
	}
	if r := w.retries(); r < 0 || r > MaxWebhookRetries {
		p.Addf("retries", "%d: expected 0 to %d", r, MaxWebhookRetries)
	}
	if w.body, err = encodeBody(w.Body); err != nil {
		p.Addf("body", "%v", err)
	}
}

// encodeBody sends text as it is and anything else as JSON.
func encodeBody(v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case string:
		return []byte(x), nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("cannot be sent as JSON (%v); use text, or a mapping with text keys", err)
	}
	return b, nil
}
