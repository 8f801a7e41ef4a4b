// Package uplink drains the receipt ledger to the cloud: batches of
// unsynced records as gzip NDJSON over HTTPS, retried with full-jitter
// backoff, acknowledged by a signed checkpoint that is stored with
// acked_through in one transaction. A batch the cloud refuses for good
// parks the uplink and raises an alarm; nothing is ever skipped.
package uplink

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"fieldkit/internal/backoff"
	"fieldkit/internal/clock"
	"fieldkit/internal/deps"
	"fieldkit/internal/health"
	"fieldkit/internal/secret"
	"fieldkit/internal/topic"
	"fieldkit/sync/receipts"
	"fieldkit/sync/wire"
)

// Ledger is what the uplink needs from the receipt ledger.
type Ledger interface {
	Box() string
	Unsynced(ctx context.Context, after uint64, maxRecords, maxBytes int) ([]receipts.Signed, error)
	Ack(ctx context.Context, cp *receipts.Checkpoint, sc receipts.SignedCheckpoint) error
	Backlog(ctx context.Context) (receipts.Backlog, error)
	FirstKey(ctx context.Context) (ed25519.PublicKey, error)
	Committed() <-chan struct{}
}

// Retainer publishes the retained backlog topic.
type Retainer interface {
	SetRetained(topic string, payload []byte)
	Prefix() string
}

// Deps are the uplink's collaborators; all optional except none.
type Deps struct {
	Clock clock.Clock
	// HTTP replaces the client built from the config (tests).
	HTTP *http.Client
	// RequestTimeout bounds one batch upload (default 60 s).
	RequestTimeout time.Duration
	Bus            receipts.Publisher
	MQTT           Retainer
	Health         receipts.Health
	Metrics        prometheus.Registerer
	Log            *slog.Logger
	// Rand feeds the backoff jitter (tests); nil is math/rand.
	Rand func() float64
	// OnRetry hears every wait before a retry.
	OnRetry func(wait time.Duration, err error)
}

// HealthName is the uplink's name in the health registry.
const HealthName = "receipts-uplink"

// State of the uplink.
type State string

const (
	Idle     State = "idle"     // nothing to send
	Draining State = "draining" // sending
	Retrying State = "retrying" // waiting after a failure
	Parked   State = "parked"   // refused for good; needs a person
	Off      State = "off"      // no cloud configured
)

// Status is published retained on receipts/backlog and served by the API.
type Status struct {
	State        State  `json:"state"`
	Count        uint64 `json:"count"`
	AckedThrough uint64 `json:"acked_through"`
	OldestAgeS   int64  `json:"oldest_age_s"`
	Reason       string `json:"reason,omitempty"`
}

// Uplink drains a ledger.
type Uplink struct {
	cfg       receipts.UplinkConfig
	l         Ledger
	d         Deps
	log       *slog.Logger
	token     string
	cloudKey  ed25519.PublicKey
	client    *http.Client
	bo        backoff.Backoff
	resume    chan struct{}
	backlogG  prometheus.Gauge
	backlogAg prometheus.Gauge
	sent      prometheus.Counter

	mu     sync.Mutex
	status Status
}

// New builds the uplink; an empty cfg.URL makes an uplink that only
// reports the backlog.
func New(cfg receipts.UplinkConfig, l Ledger, d Deps) (*Uplink, error) {
	if cfg.BatchRecords == 0 {
		cfg.BatchRecords = receipts.DefaultBatchRecords
	}
	if cfg.BatchBytes == 0 {
		cfg.BatchBytes = receipts.DefaultBatchBytes
	}
	// Only real sales leave the box: a rehearsal ledger is never drained,
	// whatever the agent wires.
	if dl, ok := l.(interface{ Domain() receipts.Domain }); ok && dl.Domain().Name != receipts.Real.Name {
		return nil, fmt.Errorf("uplink: the ledger signs in the %s domain; only the sales ledger syncs", dl.Domain().Name)
	}
	d.Clock, d.Log = deps.Clock(d.Clock), deps.Log(d.Log)
	if d.RequestTimeout == 0 {
		d.RequestTimeout = 60 * time.Second
	}
	u := &Uplink{cfg: cfg, l: l, d: d, log: d.Log.With("part", "uplink"), resume: make(chan struct{}, 1),
		bo: backoff.Backoff{Base: time.Second, Cap: 5 * time.Minute, Rand: d.Rand}}
	if cfg.TokenFile != "" {
		t, err := secret.Read(cfg.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("uplink: %w", err)
		}
		u.token = t
	}
	if cfg.CloudKeyFile != "" {
		b, err := os.ReadFile(cfg.CloudKeyFile)
		if err != nil {
			return nil, fmt.Errorf("uplink: cloud key: %w", err)
		}
		if u.cloudKey, err = receipts.ParsePublicPEM(b); err != nil {
			return nil, fmt.Errorf("uplink: cloud key %s: %w", cfg.CloudKeyFile, err)
		}
	}
	u.client = d.HTTP
	if u.client == nil {
		c, err := clientFor(cfg)
		if err != nil {
			return nil, err
		}
		u.client = c
	}
	u.backlogG = prometheus.NewGauge(prometheus.GaugeOpts{Name: "fieldkit_receipts_backlog", Help: "Receipts not yet acknowledged by the cloud."})
	u.backlogAg = prometheus.NewGauge(prometheus.GaugeOpts{Name: "fieldkit_receipts_backlog_age_seconds", Help: "Age of the oldest unacknowledged receipt."})
	u.sent = prometheus.NewCounter(prometheus.CounterOpts{Name: "fieldkit_receipts_uplinked_total", Help: "Receipts acknowledged by the cloud."})
	if d.Metrics != nil {
		for _, c := range []prometheus.Collector{u.backlogG, u.backlogAg, u.sent} {
			if err := d.Metrics.Register(c); err != nil {
				return nil, fmt.Errorf("uplink: metrics: %w", err)
			}
		}
	}
	u.status.State = Idle
	if cfg.URL == "" {
		u.status.State = Off
	}
	return u, nil
}

func clientFor(cfg receipts.UplinkConfig) (*http.Client, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("uplink: ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("uplink: ca_file %s holds no PEM certificate", cfg.CAFile)
		}
		tc.RootCAs = pool
	}
	if cfg.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("uplink: client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	return &http.Client{Transport: tr}, nil
}

// Status is the current state.
func (u *Uplink) Status() Status {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.status
}

// Resume unparks the uplink (after a person fixed what the cloud refused).
func (u *Uplink) Resume() {
	select {
	case u.resume <- struct{}{}:
	default:
	}
}

func (u *Uplink) setState(st State, reason string) {
	u.mu.Lock()
	u.status.State, u.status.Reason = st, reason
	u.mu.Unlock()
	if u.d.Health != nil {
		switch st {
		case Parked:
			u.d.Health.Set(HealthName, health.Failed, reason)
		case Retrying:
			u.d.Health.Set(HealthName, health.Degraded, reason)
		default:
			u.d.Health.Set(HealthName, health.OK, "")
		}
	}
}

// publish refreshes the backlog figures and announces them.
func (u *Uplink) publish(ctx context.Context) {
	b, err := u.l.Backlog(ctx)
	if err != nil {
		if ctx.Err() == nil {
			u.log.Warn("cannot read the backlog", "err", err)
		}
		return
	}
	var age int64
	if b.Count > 0 && !b.Oldest.IsZero() {
		age = int64(u.d.Clock.Since(b.Oldest) / time.Second)
		if age < 0 {
			age = 0
		}
	}
	u.mu.Lock()
	u.status.Count, u.status.AckedThrough, u.status.OldestAgeS = b.Count, b.AckedThrough, age
	st := u.status
	u.mu.Unlock()
	u.backlogG.Set(float64(b.Count))
	u.backlogAg.Set(float64(age))
	payload, _ := json.Marshal(st)
	if u.d.MQTT != nil {
		u.d.MQTT.SetRetained(topic.Under(u.d.MQTT.Prefix(), topic.ReceiptsBacklog), payload)
	}
	if u.d.Bus != nil {
		u.d.Bus.Publish(topic.ReceiptsBacklog, payload)
	}
}

func (u *Uplink) alarm(kind, msg string) {
	u.log.Error("receipt uplink alarm", "kind", kind, "msg", msg)
	if u.d.Bus != nil {
		b, _ := json.Marshal(map[string]string{"kind": kind, "message": msg})
		u.d.Bus.Publish(topic.ReceiptsAlarm, b)
	}
}

// Run drains until ctx ends.
func (u *Uplink) Run(ctx context.Context) error {
	u.publish(ctx)
	if u.cfg.URL == "" {
		return u.idle(ctx)
	}
	b, err := u.l.Backlog(ctx)
	if err != nil {
		return fmt.Errorf("uplink: %w", err)
	}
	cursor := b.AckedThrough
	// next is the batch after the one in flight, read and compressed
	// while the cloud works on the current one: on a long backlog the
	// sender's half of the work then costs no time. It is used only when
	// the cloud acknowledged exactly up to where it starts.
	var next *prepared
	for ctx.Err() == nil {
		committed := u.l.Committed()
		var cur prepared
		if next != nil && next.err == nil && next.after == cursor && len(next.batch) > 0 {
			cur = *next
		} else {
			cur = u.prepare(ctx, cursor)
		}
		next = nil
		batch, err := cur.batch, cur.err
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			u.retry(ctx, 0, fmt.Errorf("read ledger: %w", err))
			continue
		}
		if len(batch) == 0 {
			u.setState(Idle, "")
			u.publish(ctx)
			t := u.d.Clock.NewTimer(30 * time.Second)
			select {
			case <-ctx.Done():
			case <-committed:
			case <-t.C():
			}
			t.Stop()
			continue
		}
		if batch[0].Seq != cursor+1 {
			u.park(ctx, fmt.Sprintf("the cloud needs seq %d but the ledger starts at %d (pruned): restore the records or ask the cloud team", cursor+1, batch[0].Seq))
			continue
		}
		u.setStateIf(Draining)
		ahead := make(chan prepared, 1)
		go func(after uint64) { ahead <- u.prepare(ctx, after) }(batch[len(batch)-1].Seq)
		out := u.send(ctx, cur)
		p := <-ahead
		next = &p
		switch {
		case out.err == nil:
			cursor = max(cursor, out.acked)
			if out.acked < batch[0].Seq {
				u.retry(ctx, 0, fmt.Errorf("the cloud acknowledged only through %d", out.acked))
				continue
			}
			u.bo.Reset()
			u.sent.Add(float64(out.acked - batch[0].Seq + 1))
			u.publish(ctx)
		case out.expected > 0:
			u.log.Warn("the cloud asks to resend from an earlier seq", "expected", out.expected, "sent_from", batch[0].Seq)
			cursor = out.expected - 1
		case out.park:
			u.park(ctx, out.err.Error())
		default:
			u.retry(ctx, out.retryAfter, out.err)
		}
	}
	return nil
}

func (u *Uplink) setStateIf(st State) {
	u.mu.Lock()
	cur := u.status.State
	u.mu.Unlock()
	if cur != Retrying {
		u.setState(st, "")
	}
}

func (u *Uplink) idle(ctx context.Context) error {
	for {
		t := u.d.Clock.NewTimer(30 * time.Second)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-u.l.Committed():
		case <-t.C():
		}
		t.Stop()
		u.publish(ctx)
	}
}

func (u *Uplink) retry(ctx context.Context, atLeast time.Duration, err error) {
	wait := max(u.bo.Next(), atLeast)
	u.setState(Retrying, err.Error())
	u.publish(ctx)
	u.log.Warn("receipt upload failed; retrying", "err", err, "wait", wait, "attempt", u.bo.Attempts())
	if u.d.OnRetry != nil {
		u.d.OnRetry(wait, err)
	}
	_ = backoff.Sleep(ctx, u.d.Clock, wait)
}

func (u *Uplink) park(ctx context.Context, reason string) {
	u.setState(Parked, reason)
	u.alarm("uplink_parked", reason)
	u.publish(ctx)
	select {
	case <-ctx.Done():
	case <-u.resume:
		u.log.Info("uplink resumed")
		u.bo.Reset()
		u.setState(Draining, "")
	}
}

type outcome struct {
	acked      uint64
	expected   uint64
	retryAfter time.Duration
	park       bool
	err        error
}

// prepared is a batch read from the ledger and its gzip NDJSON body.
type prepared struct {
	after  uint64 // the batch holds the unsynced records after this seq
	batch  []receipts.Signed
	body   []byte
	err    error // reading the ledger failed: retried
	encErr error // a record cannot be encoded: send parks on it
}

// prepare reads the next batch after seq and compresses it.
func (u *Uplink) prepare(ctx context.Context, after uint64) prepared {
	batch, err := u.l.Unsynced(ctx, after, u.cfg.BatchRecords, u.cfg.BatchBytes)
	if err != nil || len(batch) == 0 {
		return prepared{after: after, err: err}
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	for _, s := range batch {
		if err := receipts.WriteLine(zw, s); err != nil {
			return prepared{after: after, batch: batch, encErr: fmt.Errorf("seq %d: %w", s.Seq, err)}
		}
	}
	if err := zw.Close(); err != nil {
		return prepared{after: after, batch: batch, encErr: err}
	}
	return prepared{after: after, batch: batch, body: buf.Bytes()}
}

// send uploads one batch and classifies the answer.
func (u *Uplink) send(ctx context.Context, p prepared) outcome {
	if p.encErr != nil {
		return outcome{park: true, err: fmt.Errorf("a record cannot be encoded for upload: %w", p.encErr)}
	}
	batch, body := p.batch, p.body
	first, last := batch[0].Seq, batch[len(batch)-1].Seq
	rctx, cancel := context.WithTimeout(ctx, u.d.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, u.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return outcome{park: true, err: err}
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	req.Header.Set("Content-Encoding", "gzip")
	req.Header.Set("Idempotency-Key", fmt.Sprintf("%s:%d-%d", u.l.Box(), first, last))
	if u.token != "" {
		req.Header.Set("Authorization", "Bearer "+u.token)
	}
	// The ledger's head as last published, so that the cloud shows this
	// box's backlog to its operators.
	st := u.Status()
	req.Header.Set(wire.HeaderBoxHead, strconv.FormatUint(max(st.AckedThrough+st.Count, last), 10))
	if first == 1 {
		if k, err := u.l.FirstKey(ctx); err == nil {
			req.Header.Set(wire.HeaderBoxKey, base64.StdEncoding.EncodeToString(k))
		}
	}
	resp, err := u.client.Do(req)
	if err != nil {
		return outcome{err: fmt.Errorf("upload seq %d-%d: %w", first, last, err)}
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return outcome{err: fmt.Errorf("upload seq %d-%d: reading the answer: %w", first, last, err)}
	}
	var r wire.Response
	_ = json.Unmarshal(answer, &r)
	code := resp.StatusCode
	switch {
	case code == http.StatusOK:
		if r.Checkpoint == nil {
			return outcome{err: fmt.Errorf("upload seq %d-%d: the cloud answered 200 without a checkpoint", first, last)}
		}
		cp, err := r.Checkpoint.Open(u.cloudKey)
		if err != nil {
			return outcome{park: true, err: fmt.Errorf("the cloud's checkpoint does not verify: %w", err)}
		}
		if cp.AckedThrough != r.AckedThrough {
			return outcome{park: true, err: fmt.Errorf("the cloud says acked_through %d but signed %d", r.AckedThrough, cp.AckedThrough)}
		}
		if err := u.l.Ack(ctx, cp, *r.Checkpoint); err != nil {
			if errors.Is(err, receipts.ErrCheckpoint) {
				u.alarm("fork", err.Error())
				return outcome{park: true, err: err}
			}
			return outcome{err: err}
		}
		return outcome{acked: cp.AckedThrough}
	case code == http.StatusConflict && r.Fork:
		u.alarm("fork", r.Error)
		return outcome{park: true, err: fmt.Errorf("the cloud reports a fork: %s", r.Error)}
	case code == http.StatusConflict && r.ExpectedSeq > 0:
		return outcome{expected: r.ExpectedSeq, err: errors.New(r.Error)}
	case retryable(code):
		return outcome{retryAfter: retryAfter(resp.Header.Get("Retry-After"), u.d.Clock.Now()),
			err: fmt.Errorf("upload seq %d-%d: %s: %s", first, last, resp.Status, r.Error)}
	default:
		return outcome{park: true, err: fmt.Errorf("the cloud refused seq %d-%d: %s: %s", first, last, resp.Status, r.Error)}
	}
}

func retryable(code int) bool {
	switch code {
	case http.StatusRequestTimeout, http.StatusTooEarly, http.StatusTooManyRequests:
		return true
	}
	return code >= 500
}

// retryAfter reads Retry-After as seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}
