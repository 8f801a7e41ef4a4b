package battery

import (
	"fmt"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"fieldkit/internal/confutil"
)

// UnmarshalYAML decodes each rig: the keys every source shares into Rig,
// the others strictly into its source's own config type. A key of
// another source is named as such, any other key is unknown; problems
// come back as yaml.TypeError lines, so that the loader reports them all,
// each at its line.
func (c *Config) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		*c = nil
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: batteries: expected a list of rigs (- name: ...)", n.Line)}}
	}
	out := make(Config, 0, len(n.Content))
	var errs []string
	for i, rn := range n.Content {
		r, es := decodeRig(fmt.Sprintf("batteries[%d]", i), rn)
		out = append(out, r)
		errs = append(errs, es...)
	}
	*c = out
	if len(errs) > 0 {
		return &yaml.TypeError{Errors: errs}
	}
	return nil
}

func decodeRig(at string, n *yaml.Node) (Rig, []string) {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	var r Rig
	if n.Kind != yaml.MappingNode {
		return r, []string{fmt.Sprintf("line %d: %s: expected a mapping such as {name: enc1, source: sim}", n.Line, at)}
	}
	common := confutil.KeysOf(&r)
	own, src := *n, *n
	own.Content, src.Content = nil, nil
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if contains(common, k.Value) {
			own.Content = append(own.Content, k, v)
		} else {
			src.Content = append(src.Content, k, v)
		}
	}
	errs := confutil.UnknownKeys(&own, &r, at)
	if err := own.Decode(&r); err != nil {
		errs = append(errs, confutil.TypeErrors(err)...)
	}
	r.Settings = newSourceConfig(r.Source)
	if r.Settings == nil {
		// Validate names the sources; keys beyond the shared ones cannot
		// be judged without one.
		return r, errs
	}
	srcKeys := confutil.KeysOf(r.Settings)
	known := src
	known.Content = nil
	for i := 0; i+1 < len(src.Content); i += 2 {
		k := src.Content[i]
		if contains(srcKeys, k.Value) {
			known.Content = append(known.Content, k, src.Content[i+1])
			continue
		}
		if others := sourcesReading(k.Value); len(others) > 0 {
			errs = append(errs, fmt.Sprintf("line %d: %s.%s: %s is for source %s, not %s",
				k.Line, at, k.Value, k.Value, strings.Join(others, " or "), r.Source))
			continue
		}
		all := append(slicesClone(common), srcKeys...)
		sort.Strings(all)
		errs = append(errs, fmt.Sprintf("line %d: unknown key %q in %s; expected one of: %s", k.Line, k.Value, at, strings.Join(all, ", ")))
	}
	errs = append(errs, confutil.UnknownKeys(&known, r.Settings, at)...)
	if err := known.Decode(r.Settings); err != nil {
		errs = append(errs, confutil.TypeErrors(err)...)
	}
	return r, errs
}

// sourcesReading are the sources that read key.
func sourcesReading(key string) []string {
	var out []string
	for _, s := range registry {
		if contains(confutil.KeysOf(s.new()), key) && !contains(out, s.name) {
			out = append(out, s.name)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func slicesClone(s []string) []string { return append([]string(nil), s...) }
