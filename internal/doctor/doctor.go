// Package doctor runs the pre-show checks: each part contributes checks,
// and each result says ok, warn or fail and, when not ok, what to do.
package doctor

import (
	"context"
	"fmt"
	"io"
	"time"
)

// Status of one check.
type Status string

const (
	OK   Status = "ok"
	Warn Status = "warn"
	Fail Status = "fail"
)

// Result is one check's outcome. Fix says what a crew member should do,
// and is required for warn and fail.
type Result struct {
	Name   string `json:"name"`
	Status Status `json:"status"`
	Detail string `json:"detail,omitempty"`
	Fix    string `json:"fix,omitempty"`
}

// Check is one named pre-show check.
type Check struct {
	Name string
	Run  func(ctx context.Context) Result
}

// Pass, Warnf and Failf build results; Name is filled in by Run.
func Pass(detail string) Result { return Result{Status: OK, Detail: detail} }

func Warnf(fix, format string, args ...any) Result {
	return Result{Status: Warn, Detail: fmt.Sprintf(format, args...), Fix: fix}
}

func Failf(fix, format string, args ...any) Result {
	return Result{Status: Fail, Detail: fmt.Sprintf(format, args...), Fix: fix}
}

// Run runs checks one after another, each with its own timeout, and never
// lets one check's panic hide the others.
func Run(ctx context.Context, checks []Check, timeout time.Duration) []Result {
	out := make([]Result, 0, len(checks))
	for _, c := range checks {
		out = append(out, runOne(ctx, c, timeout))
	}
	return out
}

func runOne(ctx context.Context, c Check, timeout time.Duration) (r Result) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	defer func() {
		if v := recover(); v != nil {
			r = Failf("report this as a bug, with the agent log", "check crashed: %v", v)
		}
		r.Name = c.Name
	}()
	return c.Run(ctx)
}

// Worst is the most severe status in rs (OK for none).
func Worst(rs []Result) Status {
	w := OK
	for _, r := range rs {
		switch {
		case r.Status == Fail:
			return Fail
		case r.Status == Warn:
			w = Warn
		}
	}
	return w
}

// Print writes one line per result, and the fix under each warn or fail.
func Print(w io.Writer, rs []Result) {
	for _, r := range rs {
		fmt.Fprintf(w, "%-4s  %s", r.Status, r.Name)
		if r.Detail != "" {
			fmt.Fprintf(w, ": %s", r.Detail)
		}
		fmt.Fprintln(w)
		if r.Status != OK && r.Fix != "" {
			fmt.Fprintf(w, "      → %s\n", r.Fix)
		}
	}
}
