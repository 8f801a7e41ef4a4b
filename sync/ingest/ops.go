package ingest

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"fieldkit/sync/receipts"
)

// VerifyBox re-verifies box's chain as stored in the database, from
// record 1 with the box's pinned first key: every signature, link and
// turnover, and that it ends at the stored head. It is the auditor's
// check that nothing was changed in the database since the records came
// in.
func (s *Server) VerifyBox(ctx context.Context, box string) (*receipts.Report, error) {
	tx, err := s.store.Begin(ctx, box)
	if err != nil {
		return nil, err
	}
	st, err := tx.State(ctx)
	tx.Rollback()
	if err != nil {
		return nil, err
	}
	if st == nil {
		return nil, fmt.Errorf("ingest: box %q: nothing stored", box)
	}
	first := st.FirstKey
	en, err := s.store.Enrollment(ctx, box)
	if err != nil {
		return nil, err
	}
	if en != nil && en.FirstKey != nil {
		first = en.FirstKey
	}
	if first == nil {
		return nil, fmt.Errorf("ingest: box %q: no first key is pinned", box)
	}
	c := receipts.NewChain(box, first)
	rep := &receipts.Report{Box: box}
	const chunk = 512
	var ss []receipts.Signed
	var recs []*receipts.Record
	errStop := errors.New("stop")
	flush := func() {
		ok := c.VerifySignatures(ss, recs, runtime.GOMAXPROCS(0))
		for i := range ss {
			if recs[i] == nil {
				rep.Problem = &receipts.Problem{Seq: c.Seq + 1, Reason: receipts.Malformed, Detail: "stored bytes are not a record"}
				break
			}
			if _, _, err := c.CheckVerified(ss[i], recs[i], ok[i]); err != nil {
				rep.Problem, _ = receipts.IsProblem(err)
				break
			}
			if rep.Count == 0 {
				rep.First = recs[i].Seq
			}
			rep.Count++
		}
		ss, recs = ss[:0], recs[:0]
	}
	err = s.store.Records(ctx, box, 0, func(sg receipts.Signed) error {
		if sg.Seq > st.Seq {
			return errStop // stored after the state was read
		}
		r, _ := sg.Decode()
		ss, recs = append(ss, sg), append(recs, r)
		if len(ss) == chunk {
			flush()
			if rep.Problem != nil {
				return errStop
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return nil, err
	}
	if rep.Problem == nil && len(ss) > 0 {
		flush()
	}
	rep.Last, rep.Head, rep.Turnover = c.Seq, c.Head, c.Turnover
	if rep.Problem == nil && (c.Seq != st.Seq || c.Head != st.Head || c.Turnover != st.Turnover) {
		rep.Problem = &receipts.Problem{Seq: c.Seq + 1, Reason: receipts.Truncated,
			Detail: fmt.Sprintf("the stored records end at seq %d (head %.16s…), the box's state says seq %d (head %.16s…)", c.Seq, c.Head, st.Seq, st.Head)}
	}
	return rep, nil
}

// Report is the fleet's end-of-show report of the sales stamped at or
// after since (zero: all). With verify, every box's chain is first
// re-verified from the database and a box that fails makes it an error:
// no report from records that cannot be trusted.
func (s *Server) Report(ctx context.Context, since time.Time, verify bool) (*FleetReport, error) {
	if verify {
		boxes, err := s.store.Boxes(ctx)
		if err != nil {
			return nil, err
		}
		for _, b := range boxes {
			if b.AckedThrough == 0 {
				continue
			}
			rep, err := s.VerifyBox(ctx, b.Box)
			if err != nil {
				return nil, err
			}
			if !rep.OK() {
				return nil, fmt.Errorf("ingest: report: box %q does not verify from the database: %v", b.Box, rep.Problem)
			}
		}
	}
	rep, err := s.store.Sales(ctx, since)
	if err != nil {
		return nil, err
	}
	rep.Verified = verify
	return rep, nil
}

// Handler serves the batches (POST /v1/receipts, and POST on any other
// path, as before) and the operators' endpoints:
//
//	GET /v1/boxes              per-box acked seq, backlog, last contact, alarms
//	GET /v1/boxes/{box}/verify the box's chain re-verified from the database
//	GET /v1/alarms?limit=N     newest alarms first
//	GET /v1/report?since=T     fleet end-of-show report (verify=0 skips the re-verification)
//	GET /metrics               Prometheus
//	GET /healthz               200 while the database answers (for the load balancer)
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST /", s)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		// For the load balancer: this instance answers and reaches the
		// database.
		if _, err := s.store.Enrollment(r.Context(), ""); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"store": s.store.Backend()})
	})
	mux.HandleFunc("GET /v1/boxes", s.admin(func(w http.ResponseWriter, r *http.Request) {
		boxes, err := s.store.Boxes(r.Context())
		if err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
			return
		}
		if boxes == nil {
			boxes = []BoxStatus{}
		}
		writeJSON(w, http.StatusOK, boxes)
	}))
	mux.HandleFunc("GET /v1/boxes/{box}/verify", s.admin(func(w http.ResponseWriter, r *http.Request) {
		rep, err := s.VerifyBox(r.Context(), r.PathValue("box"))
		if err != nil {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
			return
		}
		code := http.StatusOK
		if !rep.OK() {
			code = http.StatusConflict
		}
		writeJSON(w, code, rep)
	}))
	mux.HandleFunc("GET /v1/alarms", s.admin(func(w http.ResponseWriter, r *http.Request) {
		limit := 100
		if v := r.URL.Query().Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 10000 {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": "limit: 1 to 10000"})
				return
			}
			limit = n
		}
		as, err := s.store.Alarms(r.Context(), limit)
		if err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
			return
		}
		if as == nil {
			as = []Alarm{}
		}
		writeJSON(w, http.StatusOK, as)
	}))
	mux.HandleFunc("GET /v1/report", s.admin(func(w http.ResponseWriter, r *http.Request) {
		var since time.Time
		if v := r.URL.Query().Get("since"); v != "" {
			t, err := receipts.ParseSince(v, s.o.Clock.Now())
			if err != nil {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
				return
			}
			since = t
		}
		rep, err := s.Report(r.Context(), since, r.URL.Query().Get("verify") != "0")
		if err != nil {
			writeJSON(w, http.StatusConflict, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, rep)
	}))
	return mux
}

func (s *Server) admin(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.o.AdminToken != "" {
			tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || subtle.ConstantTimeCompare([]byte(tok), []byte(s.o.AdminToken)) != 1 {
				writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "missing or wrong admin bearer token"})
				return
			}
		}
		h(w, r)
	}
}

type metrics struct {
	reg      *prometheus.Registry
	batches  *prometheus.CounterVec
	records  *prometheus.CounterVec
	alarms   *prometheus.CounterVec
	duration prometheus.Histogram
}

func newMetrics(s *Server) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.batches = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fieldkit_ingest_batches_total",
		Help: "Batches answered by this instance, by HTTP status."}, []string{"code"})
	m.records = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fieldkit_ingest_records_total",
		Help: "Records in batches answered by this instance: accepted (verified and committed) or duplicate."}, []string{"result"})
	m.alarms = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fieldkit_ingest_alarms_raised_total",
		Help: "Alarms raised by this instance, by kind (fork: tamper alarm; invalid: a record that does not verify)."}, []string{"kind"})
	m.duration = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "fieldkit_ingest_batch_seconds",
		Help: "Time to answer a batch.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)})
	m.reg.MustRegister(m.batches, m.records, m.alarms, m.duration, &fleetCollector{s: s})
	return m
}

func (m *metrics) batch(code int, r Response, d time.Duration) {
	m.batches.WithLabelValues(strconv.Itoa(code)).Inc()
	if r.Accepted > 0 && r.AckedThrough > 0 { // committed
		m.records.WithLabelValues("accepted").Add(float64(r.Accepted))
	}
	if r.Duplicates > 0 {
		m.records.WithLabelValues("duplicate").Add(float64(r.Duplicates))
	}
	m.duration.Observe(d.Seconds())
}

// fleetCollector reads every box's figures from the database at scrape
// time, so that each instance's /metrics shows the whole fleet.
type fleetCollector struct{ s *Server }

var (
	descAcked   = prometheus.NewDesc("fieldkit_ingest_box_acked_seq", "Last seq the cloud holds of a box.", []string{"box", "venue"}, nil)
	descBacklog = prometheus.NewDesc("fieldkit_ingest_box_backlog", "Records a box held that the cloud did not, as of its last contact.", []string{"box", "venue"}, nil)
	descContact = prometheus.NewDesc("fieldkit_ingest_box_last_contact_timestamp_seconds", "When a box last sent a batch.", []string{"box", "venue"}, nil)
	descAlarms  = prometheus.NewDesc("fieldkit_ingest_box_alarms", "Alarms stored for a box, by kind.", []string{"box", "venue", "kind"}, nil)
	descUp      = prometheus.NewDesc("fieldkit_ingest_store_up", "1 when the fleet figures could be read from the database.", nil, nil)
)

func (f *fleetCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descAcked, descBacklog, descContact, descAlarms, descUp} {
		ch <- d
	}
}

func (f *fleetCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	boxes, err := f.s.store.Boxes(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, 1)
	for _, b := range boxes {
		ch <- prometheus.MustNewConstMetric(descAcked, prometheus.GaugeValue, float64(b.AckedThrough), b.Box, b.Venue)
		ch <- prometheus.MustNewConstMetric(descBacklog, prometheus.GaugeValue, float64(b.Backlog), b.Box, b.Venue)
		if !b.LastContact.IsZero() {
			ch <- prometheus.MustNewConstMetric(descContact, prometheus.GaugeValue, float64(b.LastContact.UnixMilli())/1000, b.Box, b.Venue)
		}
		ch <- prometheus.MustNewConstMetric(descAlarms, prometheus.GaugeValue, float64(b.Forks), b.Box, b.Venue, AlarmFork)
		ch <- prometheus.MustNewConstMetric(descAlarms, prometheus.GaugeValue, float64(b.Invalid), b.Box, b.Venue, AlarmInvalid)
	}
}
