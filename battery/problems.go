package battery

import (
	"strings"

	"fieldkit/internal/confutil"
)

// problems wraps confutil.Problems for New, which has no file to point into.
type problems struct{ *confutil.Problems }

func newProblems() problems { return problems{confutil.NewProblems().At("batteries")} }

func (p problems) String() string {
	var lines []string
	for _, pr := range p.List() {
		lines = append(lines, pr.Path+": "+pr.Msg)
	}
	return strings.Join(lines, "; ")
}
