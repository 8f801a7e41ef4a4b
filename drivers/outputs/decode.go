package outputs

import (
	"fmt"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"fieldkit/internal/confutil"
)

// UnmarshalYAML decodes each output into its kind's own config type. A
// key the kind does not read is refused (with the kind's keys when it
// belongs to another kind), as confutil refuses unknown keys elsewhere;
// problems come back as yaml.TypeError lines, so that the loader reports
// them all, each at its line.
func (os *Outputs) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		*os = nil
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: outputs: expected a mapping of output names to outputs", n.Line)}}
	}
	out := make(Outputs, len(n.Content)/2)
	var errs []string
	for i := 0; i+1 < len(n.Content); i += 2 {
		name := n.Content[i].Value
		o, es := decodeOutput(name, n.Content[i+1])
		out[name] = o
		errs = append(errs, es...)
	}
	*os = out
	if len(errs) > 0 {
		return &yaml.TypeError{Errors: errs}
	}
	return nil
}

func decodeOutput(name string, n *yaml.Node) (Output, []string) {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	at := "outputs." + name
	if n.Kind != yaml.MappingNode {
		return Output{}, []string{fmt.Sprintf("line %d: %s: expected a mapping such as {kind: gpio, pin: cue_lamp}", n.Line, at)}
	}
	var o Output
	rest := *n
	rest.Content = nil
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Value == "kind" {
			if err := v.Decode(&o.Kind); err != nil {
				return o, confutil.TypeErrors(err)
			}
			continue
		}
		rest.Content = append(rest.Content, k, v)
	}
	o.Config = newConfig(o.Kind)
	if o.Config == nil {
		return o, nil // Validate names the kinds
	}
	fields := confutil.KeysOf(o.Config)
	var errs []string
	for i := 0; i+1 < len(rest.Content); i += 2 {
		k := rest.Content[i]
		if contains(fields, k.Value) {
			continue
		}
		if usedByAnotherKind(k.Value) {
			errs = append(errs, fmt.Sprintf("line %d: %s.%s: %s is not used by kind %s (its fields: %s)",
				k.Line, at, k.Value, k.Value, o.Kind, strings.Join(fields, ", ")))
			continue
		}
		all := append([]string{"kind"}, fields...)
		sort.Strings(all)
		errs = append(errs, fmt.Sprintf("line %d: unknown key %q in %s; expected one of: %s", k.Line, k.Value, at, strings.Join(all, ", ")))
	}
	if err := rest.Decode(o.Config); err != nil {
		errs = append(errs, confutil.TypeErrors(err)...)
	}
	return o, errs
}

func usedByAnotherKind(key string) bool {
	for _, k := range registry {
		if contains(confutil.KeysOf(k.new()), key) {
			return true
		}
	}
	return false
}

func contains(s []string, x string) bool {
	for _, y := range s {
		if y == x {
			return true
		}
	}
	return false
}
