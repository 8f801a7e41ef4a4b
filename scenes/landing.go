package scenes

import (
	"fmt"
	"sort"
	"time"

	"fieldkit/drivers/cue"
)

// TargetRecord is what became of one output's command in a step: when
// it was meant to land, when it was sent, and whether the output
// confirmed it (read back from the line, or the device's own report) or
// failed, in the device's words. An output that cannot read back stays
// sent.
type TargetRecord struct {
	Output string `json:"output"`
	// Status is planned, sent, confirmed, failed or superseded (a newer
	// command reached the output before this one was confirmed).
	Status string `json:"status"`
	// LeadUS is how far ahead of the step's time it was sent (lead:).
	LeadUS    *float64   `json:"lead_us,omitempty"`
	Planned   *time.Time `json:"planned,omitempty"`
	Sent      *time.Time `json:"sent,omitempty"`
	Confirmed *time.Time `json:"confirmed,omitempty"`
	// LandedUS is Confirmed-Planned.
	LandedUS *float64 `json:"landed_us,omitempty"`
	Error    string   `json:"error,omitempty"`
}

const statusPlanned = "planned"

func newTargetRecords(names []string) []TargetRecord {
	if len(names) == 0 {
		return nil
	}
	out := make([]TargetRecord, len(names))
	for i, n := range names {
		out[i] = TargetRecord{Output: n, Status: statusPlanned}
	}
	return out
}

// copyRecords copies recs deeply enough to be read without Engine.mu.
func copyRecords(recs []StepRecord) []StepRecord {
	out := append([]StepRecord(nil), recs...)
	for i := range out {
		out[i].Outputs = append([]TargetRecord(nil), out[i].Outputs...)
	}
	return out
}

// early is one output of a step group sent ahead of the group's time.
type early struct {
	k, n int // step, and target within it
	lead time.Duration
}

// leadsOf returns the outputs of steps[i:j] with a lead, the longest
// first, and the longest lead. It allocates only when some output has
// one, so a plain step costs a type check per output.
func (e *Engine) leadsOf(steps []Step, i, j int) ([]early, time.Duration) {
	var out []early
	var max time.Duration
	for k := i; k < j; k++ {
		for n, name := range steps[k].targets {
			l, ok := e.d.Targets[name].(cue.Leader)
			if !ok {
				continue
			}
			d := l.Lead()
			if d <= 0 {
				continue
			}
			out = append(out, early{k, n, min(d, cue.MaxLead)})
			max = maxDur(max, min(d, cue.MaxLead))
		}
	}
	// Longest lead first; the same lead in step and target order.
	sort.SliceStable(out, func(a, b int) bool { return out[a].lead > out[b].lead })
	return out, max
}

func maxDur(a, b time.Duration) time.Duration {
	if a > b {
		return a
	}
	return b
}

func isEarly(es []early, k, n int) (time.Duration, bool) {
	for _, x := range es {
		if x.k == k && x.n == n {
			return x.lead, true
		}
	}
	return 0, false
}

// stepReporter takes the outcomes of the commands of one step group: the
// outputs call it (cue.Reporter) as they hear back, possibly after the
// run ended, and it updates the group's target records.
type stepReporter struct {
	e    *Engine
	s    *slot
	r    *run
	recs []StepRecord // the phase's records, fixed when the group was dispatched
	i, j int
}

func (p *stepReporter) Report(output string, o cue.Outcome) {
	e := p.e
	e.mu.Lock()
	defer e.mu.Unlock()
	for k := p.i; k < p.j; k++ {
		sr := &p.recs[k]
		for n := range sr.Outputs {
			tr := &sr.Outputs[n]
			if tr.Output != output {
				continue
			}
			at := o.At
			switch o.Status {
			case cue.Sent:
				tr.Sent = &at
				if tr.Status == statusPlanned {
					tr.Status = cue.Sent
				}
			case cue.Confirmed:
				if tr.Status == cue.Failed {
					break
				}
				tr.Status, tr.Confirmed = cue.Confirmed, &at
				if tr.Planned != nil {
					tr.LandedUS = us(at.Sub(*tr.Planned))
				}
			case cue.Superseded:
				if tr.Status != cue.Confirmed && tr.Status != cue.Failed {
					tr.Status = cue.Superseded
				}
			case cue.Failed:
				tr.Status, tr.Error = cue.Failed, o.Error
				p.failedLocked(sr, output, o.Error)
			}
			return
		}
	}
}

// failedLocked makes a target's failure the step's error, so that the
// run ends failed; a run already over is marked failed after the fact.
func (p *stepReporter) failedLocked(sr *StepRecord, output, why string) {
	e, r, s := p.e, p.r, p.s
	msg := fmt.Sprintf("%s: %s", output, why)
	if sr.Error == "" {
		sr.Error = msg
	} else {
		sr.Error += "; " + msg
	}
	e.log.Warn("scene output failed", "scene", r.sc.Name, "run", r.id, "step", sr.Step, "output", output, "err", why)
	rec := r.rec
	if rec.Ended == nil || rec.State != StateDone {
		return
	}
	rec.State, rec.Reason = StateFailed, fmt.Sprintf("step %d (%s): %s", sr.Step, sr.Kind, msg)
	e.met.runs.WithLabelValues(r.sc.Name, StateFailed).Inc()
	if s.cur == nil && s.last == rec {
		st := s.status
		st.State, st.Reason = StateFailed, rec.Reason
		e.setStatusLocked(s, st)
	}
}

// FailedTargets are the outputs of the run that failed, as "output: why".
func (rec *RunRecord) FailedTargets() []string {
	var out []string
	for _, steps := range [][]StepRecord{rec.Steps, rec.OnCancel} {
		for _, sr := range steps {
			for _, tr := range sr.Outputs {
				if tr.Status == cue.Failed {
					out = append(out, fmt.Sprintf("step %d %s: %s", sr.Step, tr.Output, tr.Error))
				}
			}
		}
	}
	return out
}
