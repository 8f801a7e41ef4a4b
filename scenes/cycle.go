package scenes

import (
	"fmt"
	"strings"

	"fieldkit/internal/topic"
)

// edge says that running scene from can fire scene to, and why.
type edge struct {
	from, to *Scene
	line     int    // in from's file (or to's, for a state chain)
	file     string //
	why      string
}

// findCycles finds scenes that would fire each other for ever: a publish
// step on a topic that another scene (or the same one) triggers on, or a
// scene that triggers on another's state. Topics are static, so the graph
// is exact; only one loop is reported per scene.
func findCycles(set *Set, prefix string) []string {
	out := map[*Scene][]edge{}
	for _, a := range set.Scenes {
		for _, l := range []struct {
			list  string
			steps []Step
		}{{"steps", a.Steps}, {"on_cancel", a.OnCancel}} {
			list, steps := l.list, l.steps
			for i, st := range steps {
				if st.Publish == nil {
					continue
				}
				for _, b := range set.Scenes {
					if why := hits(b, st.Publish.Topic, prefix); why != "" {
						name := fmt.Sprintf("step %d", i+1)
						if list == "on_cancel" {
							name = "on_cancel " + name
						}
						out[a] = append(out[a], edge{from: a, to: b, file: a.File,
							line: a.doc.Line(fmt.Sprintf("%s[%d].publish.topic", list, i)),
							why:  fmt.Sprintf("%s %s publishes %s, which %s", a.Name, name, st.Publish.Topic, why)})
					}
				}
			}
		}
		state := topic.SceneState(a.Name)
		for _, b := range set.Scenes {
			for j, tr := range b.Triggers {
				if f := tr.busFilter(); f != "" && topic.Match(f, state) {
					out[a] = append(out[a], edge{from: a, to: b, file: b.File,
						line: b.doc.Line(fmt.Sprintf("triggers[%d]", j)),
						why:  fmt.Sprintf("%s triggers on %s's state (%s)", b.Name, a.Name, f)})
					break
				}
			}
		}
	}

	const (
		white = iota
		grey
		black
	)
	color := map[*Scene]int{}
	var stack []edge
	var lines []string
	var visit func(s *Scene)
	visit = func(s *Scene) {
		color[s] = grey
		for _, e := range out[s] {
			switch color[e.to] {
			case white:
				stack = append(stack, e)
				visit(e.to)
				stack = stack[:len(stack)-1]
			case grey:
				// e.to is on the current path: the loop runs from there
				// along the path and back through e.
				start := 0
				for i, pe := range stack {
					if pe.to == e.to {
						start = i + 1
					}
				}
				loop := append(append([]edge(nil), stack[start:]...), e)
				lines = append(lines, describeLoop(loop))
			}
		}
		color[s] = black
	}
	for _, s := range set.Scenes {
		if color[s] == white {
			stack = stack[:0]
			visit(s)
		}
	}
	return lines
}

func describeLoop(loop []edge) string {
	names := []string{loop[0].from.Name}
	var whys []string
	for _, e := range loop {
		names = append(names, e.to.Name)
		whys = append(whys, e.why)
	}
	first := loop[0]
	return fmt.Sprintf("%s:%d: scenes would trigger each other for ever: %s (%s); break the loop by changing a topic or a trigger",
		first.file, first.line, strings.Join(names, " → "), strings.Join(whys, "; "))
}

// hits says how publishing on t fires scene b, or "" if it does not.
func hits(b *Scene, t, prefix string) string {
	if t == topic.Under(prefix, topic.SceneRun(b.Name)) {
		return "is " + b.Name + "'s run topic"
	}
	for _, tr := range b.Triggers {
		if tr.MQTT != "" && topic.Match(tr.MQTT, t) {
			return fmt.Sprintf("triggers %s (mqtt: %s)", b.Name, tr.MQTT)
		}
		// The agent bridges its own topics onto the bus, so a publish
		// under the prefix reaches bus triggers too.
		if f := tr.busFilter(); f != "" && strings.HasPrefix(t, prefix+"/") && topic.Match(f, strings.TrimPrefix(t, prefix+"/")) {
			return fmt.Sprintf("triggers %s (event: %s)", b.Name, f)
		}
	}
	return ""
}
