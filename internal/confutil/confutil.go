// Package confutil decodes YAML configuration strictly and reports every
// problem as "file:line: what was wrong, what was expected", so that a crew
// member can fix a typo without reading Go errors. Parts own their config
// types; they validate into a Problems list by path, and the loader turns
// paths into line numbers.
package confutil

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Doc is a decoded YAML file that can still answer "which line was that".
type Doc struct {
	File string
	Root *yaml.Node // the document's top mapping; nil for an empty file
}

// Decode decodes data, read from file, into v (a pointer to a struct).
// Unknown keys, wrong types and syntax errors are all refused with
// file:line messages; every problem found is reported, not only the first.
func Decode(file string, data []byte, v any) (*Doc, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, syntaxError(file, err)
	}
	d := &Doc{File: file}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return d, nil
	}
	d.Root = doc.Content[0]
	if d.Root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s:%d: the file must be a mapping of keys (box: ..., http: ...), not a %s", file, d.Root.Line, kindName(d.Root))
	}
	var probs []string
	checkKeys(atFile(file), d.Root, reflect.TypeOf(v), "", &probs)
	if err := d.Root.Decode(v); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			for _, e := range te.Errors {
				if !strings.Contains(e, "not found in type") { // checkKeys said it better
					probs = append(probs, typeError(file, e))
				}
			}
		} else {
			probs = append(probs, fmt.Sprintf("%s: %v", file, err))
		}
	}
	if len(probs) > 0 {
		sortByLine(probs)
		return nil, &Error{Lines: probs}
	}
	return d, nil
}

// Error holds one or more "file:line: message" lines.
type Error struct{ Lines []string }

func (e *Error) Error() string { return strings.Join(e.Lines, "\n") }

// Problems collects validation findings, each at a path such as
// "printers.counter.baud" or "outputs[2].pin".
type Problems struct {
	prefix string
	list   *[]Problem
}

// Problem is one finding.
type Problem struct {
	Path string
	Msg  string
}

// NewProblems returns an empty list.
func NewProblems() *Problems { return &Problems{list: new([]Problem)} }

// At returns a view of p whose paths are below prefix.
func (p *Problems) At(prefix string) *Problems {
	return &Problems{prefix: join(p.prefix, prefix), list: p.list}
}

// Addf records a problem at path (relative to p's prefix).
func (p *Problems) Addf(path, format string, args ...any) {
	*p.list = append(*p.list, Problem{Path: join(p.prefix, path), Msg: fmt.Sprintf(format, args...)})
}

// Empty reports whether nothing was found.
func (p *Problems) Empty() bool { return len(*p.list) == 0 }

// List returns the findings so far.
func (p *Problems) List() []Problem { return *p.list }

func join(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	case strings.HasPrefix(b, "["):
		return a + b
	}
	return a + "." + b
}

// Err turns p into an *Error with lines from d, or nil when p is empty.
func (d *Doc) Err(p *Problems) error {
	if p.Empty() {
		return nil
	}
	var lines []string
	for _, pr := range p.List() {
		line := d.Line(pr.Path)
		if pr.Path == "" {
			lines = append(lines, fmt.Sprintf("%s:%d: %s", d.File, line, pr.Msg))
			continue
		}
		lines = append(lines, fmt.Sprintf("%s:%d: %s: %s", d.File, line, pr.Path, pr.Msg))
	}
	sortByLine(lines)
	return &Error{Lines: lines}
}

// Line returns the line of the value at path, or of the nearest enclosing
// node that exists (a missing key is reported where its parent is).
func (d *Doc) Line(path string) int {
	if d == nil || d.Root == nil {
		return 1
	}
	n := d.Root
	line := n.Line
	for _, seg := range splitPath(path) {
		next := child(n, seg)
		if next == nil {
			break
		}
		n = next
		line = n.Line
	}
	return line
}

func splitPath(path string) []string {
	var segs []string
	for _, part := range strings.Split(path, ".") {
		for part != "" {
			i := strings.IndexByte(part, '[')
			switch {
			case i < 0:
				segs = append(segs, part)
				part = ""
			case i > 0:
				segs = append(segs, part[:i])
				part = part[i:]
			default:
				j := strings.IndexByte(part, ']')
				if j < 0 {
					segs = append(segs, part)
					part = ""
					continue
				}
				segs = append(segs, part[:j+1])
				part = part[j+1:]
			}
		}
	}
	return segs
}

func child(n *yaml.Node, seg string) *yaml.Node {
	if strings.HasPrefix(seg, "[") && n.Kind == yaml.SequenceNode {
		i, err := strconv.Atoi(strings.Trim(seg, "[]"))
		if err != nil || i < 0 || i >= len(n.Content) {
			return nil
		}
		return n.Content[i]
	}
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == seg {
			return n.Content[i+1]
		}
	}
	return nil
}

var unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()

// UnknownKeys reports the keys of n, nested ones too, that v's type has
// no field for, as lines in yaml.TypeError's form ("line 4: unknown key
// ..."). A type that decodes itself (UnmarshalYAML), which Decode does
// not look into, uses it to be as strict; path is where n sits.
func UnknownKeys(n *yaml.Node, v any, path string) []string {
	var probs []string
	checkKeys(func(line int, msg string) string { return fmt.Sprintf("line %d: %s", line, msg) }, n, reflect.TypeOf(v), path, &probs)
	return probs
}

func atFile(file string) func(line int, msg string) string {
	return func(line int, msg string) string { return fmt.Sprintf("%s:%d: %s", file, line, msg) }
}

// checkKeys walks n against t and reports keys that t has no field for,
// with the keys it does have.
func checkKeys(at func(line int, msg string) string, n *yaml.Node, t reflect.Type, path string, probs *[]string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		return
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode || t == reflect.TypeOf(time.Time{}) {
			return
		}
		fields := map[string]reflect.Type{}
		structFields(t, fields)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			ft, ok := fields[k.Value]
			if !ok {
				*probs = append(*probs, at(k.Line, fmt.Sprintf("unknown key %q%s; expected one of: %s",
					k.Value, inPath(path), strings.Join(sortedKeys(fields), ", "))))
				continue
			}
			checkKeys(at, val, ft, join(path, k.Value), probs)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			checkKeys(at, n.Content[i+1], t.Elem(), join(path, n.Content[i].Value), probs)
		}
	case reflect.Slice, reflect.Array:
		if n.Kind != yaml.SequenceNode {
			return
		}
		for i, c := range n.Content {
			checkKeys(at, c, t.Elem(), fmt.Sprintf("%s[%d]", path, i), probs)
		}
	}
}

func inPath(path string) string {
	if path == "" {
		return ""
	}
	return " in " + path
}

func structFields(t reflect.Type, out map[string]reflect.Type) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				structFields(ft, out)
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
}

func sortedKeys(m map[string]reflect.Type) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

var (
	reTypeErr = regexp.MustCompile("^line (\\d+): cannot unmarshal !!(\\w+) (?:`(.*)` )?into (.+)$")
	reLine    = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
)

func typeError(file, e string) string {
	m := reTypeErr.FindStringSubmatch(e)
	if m == nil {
		if m := reLine.FindStringSubmatch(e); m != nil {
			return fmt.Sprintf("%s:%s: %s", file, m[1], m[2])
		}
		return fmt.Sprintf("%s: %s", file, e)
	}
	if m[3] == "" {
		return fmt.Sprintf("%s:%s: found %s, expected %s", file, m[1], yamlKind(m[2]), goTypeName(m[4]))
	}
	return fmt.Sprintf("%s:%s: %q is %s, expected %s", file, m[1], m[3], yamlKind(m[2]), goTypeName(m[4]))
}

func syntaxError(file string, err error) error {
	msg := err.Error()
	if m := reLine.FindStringSubmatch(msg); m != nil {
		return &Error{Lines: []string{fmt.Sprintf("%s:%s: YAML syntax: %s", file, m[1], m[2])}}
	}
	return &Error{Lines: []string{fmt.Sprintf("%s: YAML syntax: %s", file, strings.TrimPrefix(msg, "yaml: "))}}
}

func yamlKind(tag string) string {
	switch tag {
	case "str":
		return "text"
	case "int":
		return "a whole number"
	case "float":
		return "a number"
	case "bool":
		return "true/false"
	case "seq":
		return "a list"
	case "map":
		return "a mapping"
	case "null":
		return "empty"
	}
	return "a " + tag
}

func goTypeName(t string) string {
	switch {
	case t == "time.Duration":
		return "a duration such as 500ms, 1.5s or 20m"
	case strings.HasPrefix(t, "int") || strings.HasPrefix(t, "uint"):
		return "a whole number"
	case strings.HasPrefix(t, "float"):
		return "a number"
	case t == "bool":
		return "true or false"
	case t == "string":
		return "text"
	case strings.HasPrefix(t, "[]"):
		return "a list"
	case strings.HasPrefix(t, "map["):
		return "a mapping (key: value)"
	}
	return "a mapping (key: value) of " + t
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "list"
	case yaml.ScalarNode:
		return "single value"
	}
	return "node"
}

var reFileLine = regexp.MustCompile(`^[^:]*:(\d+):`)

func sortByLine(lines []string) {
	num := func(s string) int {
		if m := reFileLine.FindStringSubmatch(s); m != nil {
			n, _ := strconv.Atoi(m[1])
			return n
		}
		return 0
	}
	sort.SliceStable(lines, func(i, j int) bool { return num(lines[i]) < num(lines[j]) })
}

// TypeErrors are err's lines in yaml.TypeError's form (one per bad
// field), or err itself.
func TypeErrors(err error) []string {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return te.Errors
	}
	return []string{err.Error()}
}

// KeysOf lists the yaml keys of a config struct, in field order: what a
// kind's section may hold, for "expected one of" messages.
func KeysOf(c any) []string {
	t := reflect.TypeOf(c)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		keys = append(keys, name)
	}
	return keys
}
