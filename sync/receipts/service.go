package receipts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"fieldkit/internal/clock"
	"fieldkit/internal/clocksync"
	"fieldkit/internal/deps"
	"fieldkit/internal/doctor"
	"fieldkit/internal/health"
	"fieldkit/internal/httpapi"
	"fieldkit/internal/mqttc"
	"fieldkit/internal/topic"
)

// MQTT is what the part needs from the agent's MQTT connection.
type MQTT interface {
	Handle(filter string, h mqttc.Handler) error
	Publish(ctx context.Context, topic string, qos byte, retained bool, payload []byte) error
	SetRetained(topic string, payload []byte)
	Prefix() string
}

// Health is where the part reports its state.
type Health interface {
	Set(name string, st health.State, reason string)
}

// Deps are what the agent hands the part. Only Box and DataDir are
// required.
type Deps struct {
	Box     string
	DataDir string
	Clock   clock.Clock
	Sync    SyncStatus // nil: the kernel's NTP state
	BootID  string     // "": /proc/sys/kernel/random/boot_id
	Bus     Publisher
	MQTT    MQTT
	Health  Health
	Metrics prometheus.Registerer
	Log     *slog.Logger
	// OnCommit, when set, is called with every new receipt once it is
	// durable (not for a replayed client_id). It runs on the caller's
	// goroutine and must not block.
	OnCommit func(Receipt)
	// LabelOutbox keeps a pickup label request with every sale, in the
	// sale's transaction, for the printer side to drain.
	LabelOutbox bool
	// Rehearsal opens the rehearsal ledger beside the sales ledger and
	// serves the rehearsal mode (see rehearsal.go).
	Rehearsal bool
	// Who names the caller of a request ("" if unknown), for the record
	// of who switched the mode.
	Who func(*http.Request) string
}

// HealthName is the part's name in the health registry.
const HealthName = "receipts"

// Service is the receipts part: the ledger, its API, its MQTT topic, its
// pruning and its checks.
type Service struct {
	cfg Config
	d   Deps
	l   *Ledger
	log *slog.Logger
	// reh is the rehearsal ledger (nil without Deps.Rehearsal).
	reh    *Ledger
	modeMu sync.Mutex
	mode   Mode

	appended  prometheus.Counter
	rehearsed prometheus.Counter
	latency   prometheus.Histogram

	// lastRefused is the newest refused second hand-over, for the page.
	lastRefused atomic.Pointer[RefusedScan]
}

// New opens the ledger (making the key on first run).
func New(cfg Config, d Deps) (*Service, error) {
	cfg = cfg.WithDefaults(d.DataDir)
	d.Clock, d.Log = deps.Clock(d.Clock), deps.Log(d.Log)
	s := &Service{cfg: cfg, d: d, log: d.Log.With("part", "receipts")}
	l, err := Open(Options{
		Path: cfg.DB, KeyFile: cfg.KeyFile, Box: d.Box, Currency: cfg.Currency,
		DiscreetDefault: cfg.DiscreetDefault, DiskBudget: int64(cfg.DiskBudgetMB) << 20,
		Clock: d.Clock, Sync: d.Sync, BootID: d.BootID, Bus: d.Bus, Log: d.Log,
		OnAlarm: s.onAlarm, LabelOutbox: d.LabelOutbox,
	})
	if err != nil {
		return nil, err
	}
	s.l = l
	if s.mode, err = ReadMode(d.DataDir); err != nil {
		l.Close()
		return nil, err
	}
	if d.Rehearsal {
		if s.reh, err = s.openRehearsal(); err != nil {
			l.Close()
			return nil, err
		}
	}
	if s.mode.Rehearsal {
		s.log.Warn("REHEARSAL MODE: sales are signed into the rehearsal ledger, not the sales ledger", "since", s.mode.Since)
	}
	s.appended = prometheus.NewCounter(prometheus.CounterOpts{Name: "fieldkit_receipts_appended_total", Help: "Receipts durably written."})
	s.rehearsed = prometheus.NewCounter(prometheus.CounterOpts{Name: "fieldkit_rehearsal_sales_total", Help: "Rehearsal sales written to the rehearsal ledger."})
	s.latency = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "fieldkit_receipts_append_seconds", Help: "Time from request to durable commit.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)})
	if d.Metrics != nil {
		for _, c := range []prometheus.Collector{s.appended, s.rehearsed, s.latency} {
			if err := d.Metrics.Register(c); err != nil {
				s.Close()
				return nil, fmt.Errorf("receipts: metrics: %w", err)
			}
		}
	}
	s.setHealth(health.OK, "")
	return s, nil
}

// Ledger is the part's ledger (for the uplink).
func (s *Service) Ledger() *Ledger { return s.l }

// Config is the section with defaults applied.
func (s *Service) Config() Config { return s.cfg }

// Close closes the ledgers; call it after Run returned.
func (s *Service) Close() error {
	err := s.l.Close()
	if s.reh != nil {
		err = errors.Join(err, s.reh.Close())
	}
	return err
}

func (s *Service) setHealth(st health.State, reason string) {
	if s.d.Health != nil {
		s.d.Health.Set(HealthName, st, reason)
	}
}

func (s *Service) onAlarm(level int, msg string) {
	switch {
	case level >= 100:
		s.setHealth(health.Failed, msg)
	case level > 0:
		s.setHealth(health.Degraded, msg)
	default:
		s.setHealth(health.OK, "")
	}
}

// Run serves the MQTT topic and prunes synced receipts past retention
// once an hour, until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	if s.d.MQTT != nil {
		if err := s.d.MQTT.Handle(topic.Under(s.d.MQTT.Prefix(), topic.ReceiptsNew), s.handleMQTT); err != nil {
			return fmt.Errorf("receipts: %w", err)
		}
	}
	s.prune(ctx)
	prune := s.d.Clock.NewTimer(time.Hour)
	defer prune.Stop()
	// The disk can fill (or be freed) by others while no sale commits, so
	// its room is measured on a timer too, not only after each commit.
	measure := s.d.Clock.NewTimer(measureEvery)
	defer measure.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-prune.C():
			s.prune(ctx)
			prune.Reset(time.Hour)
		case <-measure.C():
			s.l.RefreshUsage(ctx)
			measure.Reset(measureEvery)
		}
	}
}

// measureEvery is how often the disk budget is measured while idle.
const measureEvery = 2 * time.Second

func (s *Service) prune(ctx context.Context) {
	cut := s.d.Clock.Now().Add(-time.Duration(s.cfg.RetentionDays) * 24 * time.Hour)
	n, err := s.l.Prune(ctx, cut)
	switch {
	case err != nil && ctx.Err() == nil:
		s.log.Error("pruning synced receipts failed", "err", err)
	case n > 0:
		s.log.Info("pruned synced receipts past retention", "records", n, "retention_days", s.cfg.RetentionDays)
	}
}

// Append writes an order and counts it: into the sales ledger, or into
// the rehearsal ledger while the box rehearses.
func (s *Service) Append(ctx context.Context, o Order) (Signed, bool, error) {
	rc, err := s.append(ctx, o)
	return rc.Signed, rc.Replay, err
}

// append is Append answering with the receipt, which says which ledger
// took the order.
func (s *Service) append(ctx context.Context, o Order) (Receipt, error) {
	if s.Rehearsing() && s.reh != nil {
		sg, replay, err := s.reh.Append(ctx, o)
		if err != nil {
			return Receipt{}, err
		}
		if !replay {
			s.rehearsed.Inc()
		}
		rc := toReceipt(sg, replay)
		rc.Rehearsal = true
		return rc, nil
	}
	t0 := time.Now()
	sg, replay, err := s.l.Append(ctx, o)
	if err == nil && !replay {
		s.appended.Inc()
		s.latency.Observe(time.Since(t0).Seconds())
		if s.d.OnCommit != nil {
			s.d.OnCommit(toReceipt(sg, false))
		}
	}
	if err != nil {
		return Receipt{}, err
	}
	return toReceipt(sg, replay), nil
}

// Receipt is the answer to a new or fetched receipt: the signed record
// exactly as stored, plus its parsed form and the short hash for labels.
type Receipt struct {
	Signed
	Short  string `json:"short"`
	Replay bool   `json:"replay,omitempty"`
	// Rehearsal marks a receipt of the rehearsal ledger: signed in the
	// Rehearsal domain, never a sale.
	Rehearsal bool    `json:"rehearsal,omitempty"`
	Receipt   *Record `json:"receipt"`
}

// NewReceipt is the answer form of a stored record.
func NewReceipt(sg Signed) Receipt { return toReceipt(sg, false) }

func toReceipt(sg Signed, replay bool) Receipt {
	r, _ := sg.Decode()
	return Receipt{Signed: sg, Short: sg.Short(), Replay: replay, Receipt: r}
}

// Routes registers the HTTP API.
func (s *Service) Routes(r *httpapi.Router) {
	r.HandleFunc("POST /api/receipts", httpapi.Crew, s.postReceipt)
	r.HandleFunc("GET /api/receipts/{seq}", httpapi.Crew, s.getReceipt)
	r.HandleFunc("GET /api/receipts", httpapi.Crew, s.listReceipts)
	r.HandleFunc("GET /api/receipts/report", httpapi.Crew, s.getReport)
	r.HandleFunc("POST /api/receipts/rotate-key", httpapi.Admin, s.rotateKey)
	s.pickupRoutes(r)
	if s.reh != nil {
		s.rehearsalRoutes(r)
	}
}

// Handler returns the receipts routes alone (role checks open): for the
// crash-test agent and tools that serve only the ledger.
func (s *Service) Handler() http.Handler {
	r := httpapi.NewRouter(nil, s.log)
	s.Routes(r)
	return r.Handler()
}

func (s *Service) postReceipt(w http.ResponseWriter, r *http.Request) {
	var raw json.RawMessage
	if err := httpapi.DecodeJSON(w, r, int64(MaxBody), &raw); err != nil {
		httpapi.WriteErr(w, err)
		return
	}
	o, err := ParseOrder(raw)
	if err != nil {
		httpapi.Error(w, StatusOf(err), err.Error())
		return
	}
	rc, err := s.append(r.Context(), o)
	if err != nil {
		httpapi.Error(w, StatusOf(err), err.Error())
		return
	}
	code := http.StatusCreated
	if rc.Replay {
		code = http.StatusOK
		w.Header().Set("Idempotent-Replay", "true")
	}
	if rc.Rehearsal {
		w.Header().Set("Fieldkit-Rehearsal", "true")
	}
	httpapi.WriteJSON(w, code, rc)
}

func (s *Service) getReceipt(w http.ResponseWriter, r *http.Request) {
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
	if err != nil || seq == 0 {
		httpapi.Error(w, http.StatusBadRequest, fmt.Sprintf("%q is not a receipt number; expected a seq from 1", r.PathValue("seq")))
		return
	}
	sg, err := s.l.Get(r.Context(), seq)
	if errors.Is(err, ErrNotFound) {
		httpapi.Error(w, http.StatusNotFound, err.Error())
		return
	}
	if err != nil {
		httpapi.Error(w, http.StatusInternalServerError, err.Error())
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, toReceipt(sg, false))
}

func (s *Service) listReceipts(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var after uint64
	var limit int
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			httpapi.Error(w, http.StatusBadRequest, fmt.Sprintf("after=%q: expected a seq (0 for all)", v))
			return
		}
		after = n
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			httpapi.Error(w, http.StatusBadRequest, fmt.Sprintf("limit=%q: expected a count (0 for all)", v))
			return
		}
		limit = n
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	if _, err := s.l.Export(r.Context(), w, after, limit); err != nil {
		s.log.Warn("export interrupted", "err", err)
	}
}

func (s *Service) getReport(w http.ResponseWriter, r *http.Request) {
	var since time.Time
	if v := r.URL.Query().Get("since"); v != "" {
		t, err := ParseSince(v, s.d.Clock.Now())
		if err != nil {
			httpapi.Error(w, http.StatusBadRequest, err.Error())
			return
		}
		since = t
	}
	z, err := s.Report(r.Context(), since)
	if err != nil {
		httpapi.Error(w, http.StatusConflict, err.Error())
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, z)
}

// Report is the end-of-show report since a time (zero: everything kept),
// derived from the verified ledger.
func (s *Service) Report(ctx context.Context, since time.Time) (*ZReport, error) {
	return s.l.Report(ctx, since, VerifyOptions{})
}

// Now is the ledger's clock, for callers that parse "since" durations.
func (s *Service) Now() time.Time { return s.d.Clock.Now() }

// ParseSince reads an RFC 3339 time or a duration back from now ("8h").
func ParseSince(v string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("since=%q: expected an RFC 3339 time (2025-06-01T18:00:00Z) or a duration back from now (8h)", v)
}

func (s *Service) rotateKey(w http.ResponseWriter, r *http.Request) {
	sg, err := s.l.Rotate(r.Context())
	if err != nil {
		httpapi.Error(w, StatusOf(err), err.Error())
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, toReceipt(sg, false))
}

// MQTTReply is published on receipts/new/reply/<client_id>.
type MQTTReply struct {
	Receipt *Receipt `json:"receipt,omitempty"`
	Error   string   `json:"error,omitempty"`
	Code    int      `json:"code,omitempty"`
}

func (s *Service) handleMQTT(ctx context.Context, m mqttc.Message) error {
	if len(m.Payload) > MaxBody {
		return fmt.Errorf("receipts: order of %d bytes; at most %d", len(m.Payload), MaxBody)
	}
	o, err := ParseOrder(m.Payload)
	if err != nil {
		var in orderIn
		if json.Unmarshal(m.Payload, &in) == nil && in.ClientID != nil && clientIDRE.MatchString(*in.ClientID) {
			// A reply topic can be formed: answer there.
			return s.replyMQTT(ctx, m.Topic+"/reply/"+*in.ClientID, MQTTReply{Error: err.Error(), Code: StatusOf(err)})
		}
		return err
	}
	if !clientIDRE.MatchString(o.ClientID) {
		// No reply topic can be formed; mqttc answers on receipts/new/error.
		return o.Validate(s.cfg.Currency)
	}
	reply := m.Topic + "/reply/" + o.ClientID
	var out MQTTReply
	rc, err := s.append(ctx, o)
	if err != nil {
		out = MQTTReply{Error: err.Error(), Code: StatusOf(err)}
	} else {
		out.Receipt = &rc
	}
	return s.replyMQTT(ctx, reply, out)
}

func (s *Service) replyMQTT(ctx context.Context, reply string, out MQTTReply) error {
	b, _ := json.Marshal(out)
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if perr := s.d.MQTT.Publish(pctx, reply, 1, false, b); perr != nil {
		return fmt.Errorf("reply on %s: %w", reply, perr)
	}
	return nil
}

// Checks are the part's pre-show checks.
func (s *Service) Checks() []doctor.Check {
	return []doctor.Check{
		{Name: "receipt ledger verifies", Run: s.checkVerify},
		{Name: "receipt key file", Run: s.checkKeyFile},
		{Name: "receipt ledger disk budget", Run: s.checkDisk},
		{Name: "receipt clock", Run: s.checkClock},
		{Name: "rehearsal mode", Run: s.checkMode},
	}
}

func (s *Service) checkVerify(ctx context.Context) doctor.Result {
	rep, err := s.l.Verify(ctx, VerifyOptions{Current: s.l.PublicKey().Pub})
	if err != nil {
		return doctor.Failf("check the data directory and the agent log", "cannot read the ledger: %v", err)
	}
	if !rep.OK() {
		return doctor.Failf("stop selling on this box, keep the database file as evidence and call support", "%v", rep.Problem)
	}
	msg := fmt.Sprintf("%d records, head seq %d", rep.Count, rep.Last)
	if len(rep.Warnings) > 0 {
		return doctor.Warnf("check the box clock (NTP or RTC)", "%s; %d warning(s), first: %s", msg, len(rep.Warnings), rep.Warnings[0])
	}
	return doctor.Pass(msg)
}

func (s *Service) checkKeyFile(context.Context) doctor.Result {
	return CheckKeyFile(s.cfg.KeyFile)
}

// CheckKeyFile checks that the signing key exists and is private.
func CheckKeyFile(path string) doctor.Result {
	st, err := os.Stat(path)
	if err != nil {
		return doctor.Failf("restore the key file from the box's backup, or start the agent once to make a new ledger", "%v", err)
	}
	if m := st.Mode().Perm(); m&0o077 != 0 {
		return doctor.Failf("run: chmod 600 "+path, "%s has mode %04o; the signing key must be readable by the agent only", path, m)
	}
	return doctor.Pass(path + " is 0600")
}

func (s *Service) checkDisk(context.Context) doctor.Result {
	used, budget := s.l.Usage()
	if budget <= 0 {
		return doctor.Pass("no disk budget set")
	}
	pct := used * 100 / budget
	detail := fmt.Sprintf("%d of %d MB (%d %%)", used>>20, budget>>20, pct)
	switch {
	case pct >= 100:
		return doctor.Failf("get the box online so the backlog syncs and can be pruned, or raise receipts.disk_budget_mb", "%s: new receipts are refused", detail)
	case pct >= 80:
		return doctor.Warnf("get the box online so the backlog syncs and can be pruned", "%s", detail)
	}
	return doctor.Pass(detail)
}

func (s *Service) checkClock(context.Context) doctor.Result {
	sync := s.d.Sync
	if sync == nil {
		sync = clocksync.Kernel{}
	}
	if !sync.Synced() {
		return doctor.Warnf("connect the box to a network with NTP, or fit an RTC; receipts are marked clock_synced=false until then",
			"the system clock is not synchronised (%s)", s.d.Clock.Now().UTC().Format(time.RFC3339))
	}
	return doctor.Pass("synchronised")
}
