package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"fieldkit/internal/backoff"
	"fieldkit/internal/clock"
	"fieldkit/internal/sqlitex"
	"fieldkit/printer/label"
	"fieldkit/printer/lang"
	"fieldkit/printer/queue"
	"fieldkit/printer/status"
	"fieldkit/printer/transport"
)

// PrinterState is what GET /api/printers and the retained
// <prefix>/printer/<name>/state topic say about one printer.
type PrinterState struct {
	Name      string       `json:"name"`
	Language  string       `json:"language"`
	Transport string       `json:"transport"`
	Device    string       `json:"device,omitempty"`
	State     status.State `json:"state"`
	Flags     []string     `json:"flags,omitempty"`
	// Parked: the queue waits for an operator (paper, cover).
	Parked     bool      `json:"parked"`
	QueueDepth int       `json:"queue_depth"`
	Uncertain  int       `json:"uncertain"`
	LastError  string    `json:"last_error,omitempty"`
	Updated    time.Time `json:"updated"`
}

// Alert is the payload of the bus event printer/<name>/alert, raised when
// a job fails or becomes uncertain.
type Alert struct {
	Printer string      `json:"printer"`
	Job     string      `json:"job"`
	State   queue.State `json:"state"`
	Error   string      `json:"error"`
}

type worker struct {
	name  string
	cfg   Printer
	tr    transport.Transport
	dev   func() string
	probe []status.Probe
	store *queue.Store
	clk   clock.Clock
	log   *slog.Logger
	m     *metrics
	pub   func(PrinterState)
	alert func(Alert)
	wake  chan struct{}

	// runCtx is run's context, for waits that must end when it stops.
	runCtx context.Context

	mu sync.Mutex
	st PrinterState
}

func (w *worker) notify() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *worker) state() PrinterState {
	w.mu.Lock()
	defer w.mu.Unlock()
	st := w.st
	st.Flags = slices.Clone(st.Flags)
	return st
}

// update changes the state under the lock and publishes it when it
// changed in a way a person would care about.
func (w *worker) update(ctx context.Context, f func(*PrinterState)) {
	depth, _ := w.store.Depth(context.WithoutCancel(ctx), w.name)
	unc, _ := w.store.Count(context.WithoutCancel(ctx), w.name, queue.Uncertain)
	w.mu.Lock()
	old := w.st
	f(&w.st)
	w.st.QueueDepth, w.st.Uncertain = depth, unc
	if w.dev != nil {
		w.st.Device = w.dev()
	}
	changed := old.State != w.st.State || old.Parked != w.st.Parked || old.QueueDepth != w.st.QueueDepth ||
		old.Uncertain != w.st.Uncertain || old.LastError != w.st.LastError || !slices.Equal(old.Flags, w.st.Flags) ||
		old.Updated.IsZero()
	if changed {
		w.st.Updated = w.clk.Now().UTC()
	}
	st := w.st
	st.Flags = slices.Clone(st.Flags)
	w.mu.Unlock()
	w.m.depth.WithLabelValues(w.name).Set(float64(depth))
	w.m.ready.WithLabelValues(w.name).Set(b2f(st.State.CanPrint()))
	if changed {
		w.pub(st)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// readStatus runs the language's status probes, each bounded by timeout.
// Any failure to get a well-formed answer is a state that cannot print.
func (w *worker) readStatus(ctx context.Context, timeout time.Duration) status.Report {
	var reps []status.Report
	for _, p := range w.probe {
		reply, err := w.tr.Query(ctx, p.Query, transport.Framer(p.Complete), timeout)
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return status.Report{State: status.Unknown, Flags: []string{"stopped"}}
		case errors.Is(err, transport.ErrUnplugged), errors.Is(err, transport.ErrClosed):
			return status.Report{State: status.Offline, Flags: []string{"not connected: " + err.Error()}}
		case errors.Is(err, transport.ErrSilent):
			return status.Report{State: status.Unknown, Flags: []string{"no answer to " + p.Name}}
		default:
			return status.Report{State: status.Error, Flags: []string{"garbled answer to " + p.Name + ": " + err.Error()}}
		}
		r, err := p.Parse(reply)
		if err != nil {
			return status.Report{State: status.Error, Flags: []string{"garbled answer to " + p.Name + ": " + err.Error()}}
		}
		reps = append(reps, r)
	}
	return status.Worst(reps...)
}

// refresh reads the status and records it.
func (w *worker) refresh(ctx context.Context, timeout time.Duration) status.Report {
	rep := w.readStatus(ctx, timeout)
	if ctx.Err() != nil {
		return rep
	}
	w.update(ctx, func(s *PrinterState) {
		s.State, s.Flags = rep.State, rep.Flags
		if rep.State.CanPrint() && s.Parked {
			s.Parked = false
		}
	})
	return rep
}

// wait blocks for d on the clock, a new job, or ctx.
func (w *worker) wait(ctx context.Context, d time.Duration) {
	t := w.clk.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C():
	case <-w.wake:
	}
}

func needsOperator(s status.State) bool { return s == status.PaperOut || s == status.CoverOpen }

func (w *worker) run(ctx context.Context) error {
	w.runCtx = ctx
	bo := backoff.Backoff{Base: 100 * time.Millisecond, Cap: w.cfg.PollInterval}
	w.refresh(ctx, w.cfg.StatusTimeout)
	for ctx.Err() == nil {
		job, ok, err := w.store.Next(ctx, w.name)
		if err != nil {
			if ctx.Err() == nil {
				w.log.Error("print queue", "err", err)
				w.wait(ctx, w.cfg.PollInterval)
			}
			continue
		}
		if !ok {
			w.wait(ctx, w.cfg.PollInterval)
			if ctx.Err() == nil {
				w.refresh(ctx, w.cfg.StatusTimeout)
			}
			continue
		}
		rep := w.refresh(ctx, w.cfg.StatusTimeout)
		if ctx.Err() != nil {
			break
		}
		if !rep.State.CanPrint() {
			if needsOperator(rep.State) {
				w.park(ctx, rep)
				w.waitTimer(ctx, w.cfg.PollInterval)
			} else {
				// Unknown, offline or error: nobody needs to act yet, the
				// printer may be rebooting; try again soon, then less often.
				_ = backoff.Sleep(ctx, w.clk, max(bo.Next(), 10*time.Millisecond))
			}
			continue
		}
		bo.Reset()
		w.unpark(ctx)
		w.print(ctx, job)
	}
	return nil
}

// waitTimer waits d or ctx, ignoring new jobs: a parked printer has to
// be polled, not woken by every submission.
func (w *worker) waitTimer(ctx context.Context, d time.Duration) {
	_ = backoff.Sleep(ctx, w.clk, d)
}

func (w *worker) park(ctx context.Context, rep status.Report) {
	n, err := w.store.Park(ctx, w.name, "printer: "+rep.String())
	if err != nil {
		w.log.Error("park queue", "err", err)
	}
	w.mu.Lock()
	was := w.st.Parked
	w.mu.Unlock()
	if !was {
		w.log.Warn("printer needs attention; queue parked", "printer", w.name, "status", rep.String(), "jobs", n)
	}
	w.update(ctx, func(s *PrinterState) { s.Parked = true })
}

func (w *worker) unpark(ctx context.Context) {
	n, err := w.store.Unpark(ctx, w.name)
	if err != nil && !sqlitex.IsFull(err) { // a full disk is reported as the job is begun
		w.log.Error("unpark queue", "err", err)
	}
	if n > 0 {
		w.log.Info("printer ready again; queue resumed", "printer", w.name, "jobs", n)
	}
	w.update(ctx, func(s *PrinterState) { s.Parked = false })
}

// print makes one attempt at job. Store updates after the first byte use
// a context that outlives ctx: a stop must not leave a job's fate unsaid.
func (w *worker) print(ctx context.Context, job queue.Job) {
	keep := context.WithoutCancel(ctx)
	start := w.clk.Now()
	l, err := label.Decode(job.Label)
	var data []byte
	if err == nil {
		data, err = lang.Encode(l, w.cfg.Profile)
	}
	if err != nil {
		w.finish(keep, job.ID, queue.Failed, "cannot encode the label for this printer: "+err.Error())
		return
	}
	j, err := w.store.Begin(ctx, job.ID)
	if sqlitex.IsFull(err) {
		// Nothing changed: the job stays queued and prints once the disk
		// has room again.
		w.diskFullWait(ctx, err)
		return
	}
	if err != nil {
		// Cancelled by an operator in the meantime.
		w.log.Debug("job not begun", "job", job.ID, "err", err)
		return
	}
	if err := w.store.WriteStarted(ctx, j.ID); sqlitex.IsFull(err) {
		// Nothing was sent, but the job is printing in the queue: fail it
		// plainly rather than leave it printing for ever.
		w.finish(keep, j.ID, queue.Failed, "disk full: the print queue cannot record the job; free space on the box's disk, then reprint")
		return
	} else if err != nil {
		w.log.Error("cannot record write start; not sending", "job", j.ID, "err", err)
		w.retryOrFail(ctx, j, "could not record the write in the queue: "+err.Error())
		return
	}
	// Once begun, a label is sent whole even if the agent is stopping: a
	// label cut off half-way is garbage on the printer and an uncertain
	// job. The transport's write timeout still bounds it.
	n, err := w.tr.Write(keep, data)
	if err != nil {
		if n == 0 {
			// No byte left: safe to try again.
			if ctx.Err() != nil {
				w.store.Retry(keep, j.ID, "agent stopping")
				return
			}
			w.update(ctx, func(s *PrinterState) { s.LastError = err.Error() })
			w.retryOrFail(ctx, j, err.Error())
			return
		}
		w.finish(keep, j.ID, queue.Uncertain, fmt.Sprintf("the connection broke after %d of %d bytes: %v; check the printer, then reprint or cancel", n, len(data), err))
		return
	}
	if err := w.store.WriteFinished(keep, j.ID); err != nil {
		w.log.Error("cannot record write end", "job", j.ID, "err", err)
	}
	// Likewise wait for the confirmation while stopping, for as long as
	// the probes can take, rather than leave a printed label uncertain.
	cctx, cancel := context.WithTimeout(keep, w.confirmTimeout(len(data))+time.Duration(len(w.probe))*w.cfg.StatusTimeout)
	rep := w.refresh(cctx, w.confirmTimeout(len(data)))
	cancel()
	if !rep.State.CanPrint() {
		w.finish(keep, j.ID, queue.Uncertain, "sent, but the printer then reported "+rep.String()+"; check whether the label came out whole, then reprint or cancel")
		return
	}
	if err := w.untilRoom(func() error { _, err := w.store.Done(keep, j.ID); return err }); err != nil {
		w.log.Error("mark job done", "job", j.ID, "err", err)
		return
	}
	w.m.jobs.WithLabelValues(w.name, string(queue.Done)).Inc()
	w.m.seconds.WithLabelValues(w.name).Observe(w.clk.Since(start).Seconds())
	w.update(ctx, func(s *PrinterState) { s.LastError = "" })
	w.log.Debug("label printed", "printer", w.name, "job", j.ID, "bytes", len(data))
}

// confirmTimeout allows for the label still draining down a paced line
// ahead of the status query that follows it.
func (w *worker) confirmTimeout(n int) time.Duration {
	d := w.cfg.StatusTimeout
	if w.cfg.Baud > 0 {
		d += time.Duration(n) * 10 * time.Second / time.Duration(w.cfg.Baud)
	}
	return d
}

// retryOrFail handles an attempt of which no byte left: back in the queue
// after a backoff, or failed after MaxAttempts.
func (w *worker) retryOrFail(ctx context.Context, j queue.Job, reason string) {
	keep := context.WithoutCancel(ctx)
	if j.Attempts >= w.cfg.MaxAttempts {
		w.finish(keep, j.ID, queue.Failed, fmt.Sprintf("gave up after %d attempts: %s", j.Attempts, reason))
		return
	}
	if err := w.untilRoom(func() error { _, err := w.store.Retry(keep, j.ID, reason); return err }); err != nil {
		w.log.Error("requeue job", "job", j.ID, "err", err)
	}
	b := backoff.Backoff{Base: 100 * time.Millisecond, Cap: w.cfg.PollInterval}
	for i := 1; i < j.Attempts; i++ {
		b.Next()
	}
	_ = backoff.Sleep(ctx, w.clk, b.Next())
}

// diskFullWait says the disk is full and waits a poll interval: the queue
// cannot change while it is, and trying at once would spin.
func (w *worker) diskFullWait(ctx context.Context, err error) {
	w.log.Warn("print queue cannot write: the disk is full; waiting for space", "err", err)
	w.update(ctx, func(s *PrinterState) { s.LastError = "disk full: the print queue cannot record anything" })
	w.waitTimer(ctx, w.cfg.PollInterval)
}

// untilRoom runs f again while it fails for want of disk space (a job's
// outcome must be recorded, or it would stay printing), polling until the
// disk has room or the worker stops; a job left printing at a stop is
// recovered at the next start.
func (w *worker) untilRoom(f func() error) error {
	ctx := w.runCtx
	if ctx == nil {
		ctx = context.Background()
	}
	for {
		err := f()
		if !sqlitex.IsFull(err) {
			return err
		}
		w.diskFullWait(ctx, err)
		if ctx.Err() != nil {
			return err
		}
	}
}

// finish moves a job to failed or uncertain and raises an alert.
func (w *worker) finish(ctx context.Context, id string, st queue.State, reason string) {
	err := w.untilRoom(func() error {
		var err error
		if st == queue.Failed {
			_, err = w.store.Fail(ctx, id, reason)
		} else {
			_, err = w.store.MarkUncertain(ctx, id, reason)
		}
		return err
	})
	if err != nil {
		w.log.Error("record job outcome", "job", id, "state", st, "err", err)
		return
	}
	w.m.jobs.WithLabelValues(w.name, string(st)).Inc()
	w.log.Warn("print job needs an operator", "printer", w.name, "job", id, "state", st, "reason", reason)
	w.alert(Alert{Printer: w.name, Job: id, State: st, Error: reason})
	w.update(ctx, func(s *PrinterState) { s.LastError = reason })
}

func alertJSON(a Alert) []byte {
	b, _ := json.Marshal(a)
	return b
}
