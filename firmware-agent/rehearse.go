package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fieldkit/internal/agentapi"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"fieldkit/firmware-agent/config"
	"fieldkit/internal/secret"
	"fieldkit/internal/topic"
	"fieldkit/printer/template"
	"fieldkit/sync/receipts"
)

// The rehearsal commands: `rehearsal on|off|status` switches the running
// agent's mode, and `rehearse` drives phantom checkouts through the
// agent's real paths (HTTP and MQTT, every payment method, some
// discreet) while the box rehearses, and reports what the show's crew
// would have seen: sale and label latency, failures, cue lateness and
// the alerts raised meanwhile.

// agentClient talks to the running agent's API.
func newAgentClient(cfg *config.Config, base string) *agentapi.Client {
	if base == "" {
		base = agentURL(cfg)
	}
	return agentapi.New(base, agentToken(cfg), 30*time.Second)
}

// cmdRehearsal is `rehearsal on|off|status`.
func cmdRehearsal(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, rest, err := configFromArgs(args, stderr)
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("rehearsal", flag.ContinueOnError)
	fs.SetOutput(stderr)
	agent := fs.String("agent", "", "the running agent's URL (default: from the config's http.listen)")
	if len(rest) == 0 {
		return fmt.Errorf("%w: rehearsal on | off | status", errUsage)
	}
	verb := rest[0]
	if err := fs.Parse(rest[1:]); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	c := newAgentClient(cfg, *agent)
	var st receipts.RehearsalStatus
	switch verb {
	case "on":
		err = c.Do(ctx, http.MethodPost, "/api/rehearsal/on", nil, &st)
	case "off":
		err = c.Do(ctx, http.MethodPost, "/api/rehearsal/off", nil, &st)
	case "status":
		err = c.Do(ctx, http.MethodGet, "/api/rehearsal", nil, &st)
	default:
		return fmt.Errorf("%w: rehearsal on | off | status, not %q", errUsage, verb)
	}
	var ae *agentapi.Error
	if errors.As(err, &ae) && ae.Code == http.StatusForbidden {
		return fmt.Errorf("switching back to real sales needs the admin token: %v", err)
	}
	if err != nil {
		return err
	}
	if st.Rehearsal {
		fmt.Fprintf(stdout, "REHEARSAL since %s: sales go to the rehearsal ledger (%d so far) and never sync; every label says REHEARSAL\n",
			st.Since.Format(time.RFC3339), headSeq(st.Ledger))
	} else {
		fmt.Fprintf(stdout, "selling for real: the sales ledger's head is #%d\n", headSeq(st.Real))
	}
	return nil
}

func headSeq(h *receipts.Head) uint64 {
	if h == nil {
		return 0
	}
	return h.Seq
}

// rehearseOpts are the flags of `rehearse`.
type rehearseOpts struct {
	sales      int
	rate       float64
	mqttShare  float64
	discreet   float64
	workers    int
	agent      string
	mqttURL    string
	scene      string
	sceneEvery int
	jsonOut    string
	labelWait  time.Duration
	answerWait time.Duration
	// scan: each printed label's code is scanned back at the pickup
	// desk by one of desks, a share scanTwice of them twice.
	scan        bool
	scanTwice   float64
	desks       int
	mqttOptions func(*paho.ClientOptions) // tests
}

func cmdRehearse(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, rest, err := configFromArgs(args, stderr)
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("rehearse", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o rehearseOpts
	fs.IntVar(&o.sales, "sales", 100, "phantom sales to make")
	fs.Float64Var(&o.rate, "rate", 10, "sales per second")
	fs.Float64Var(&o.mqttShare, "mqtt-share", 0.3, "share of the sales sent over MQTT (the rest over HTTP)")
	fs.Float64Var(&o.discreet, "discreet", 0.2, "share of the sales that are discreet")
	fs.IntVar(&o.workers, "workers", 16, "sales in flight at most")
	fs.StringVar(&o.agent, "agent", "", "the running agent's URL (default: from the config's http.listen)")
	fs.StringVar(&o.mqttURL, "mqtt", "", "broker URL (default: the config's mqtt.url, or its embedded broker)")
	fs.StringVar(&o.scene, "scene", "", "a scene to fire during the run, for cue lateness")
	fs.IntVar(&o.sceneEvery, "scene-every", 100, "fire --scene every this many sales")
	fs.StringVar(&o.jsonOut, "json", "", "write the JSON report to this file (- for stdout, instead of the text)")
	fs.DurationVar(&o.labelWait, "label-wait", 2*time.Minute, "how long to wait for the last labels after the last sale")
	fs.DurationVar(&o.answerWait, "answer-wait", 10*time.Second, "how long a sale may take to be answered")
	fs.BoolVar(&o.scan, "scan", false, "scan each printed label's code back at the pickup desk (POST /api/pickup/scan)")
	fs.Float64Var(&o.scanTwice, "scan-twice", 0.1, "with --scan, share of the labels scanned a second time, which the desk must refuse")
	fs.IntVar(&o.desks, "desks", 2, "with --scan, pickup desks scanning at once")
	if err := fs.Parse(rest); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: rehearse takes flags only, got %q", errUsage, fs.Args())
	}
	if o.sales < 1 || o.rate <= 0 || o.workers < 1 || o.mqttShare < 0 || o.mqttShare > 1 || o.discreet < 0 || o.discreet > 1 ||
		o.scanTwice < 0 || o.scanTwice > 1 || o.desks < 1 {
		return fmt.Errorf("%w: rehearse needs --sales >= 1, --rate > 0, --workers >= 1, --desks >= 1 and shares between 0 and 1", errUsage)
	}
	rep, err := rehearse(ctx, cfg, o)
	if err != nil {
		return err
	}
	js, _ := json.MarshalIndent(rep, "", "  ")
	switch o.jsonOut {
	case "-":
		fmt.Fprintf(stdout, "%s\n", js)
	case "":
		rep.text(stdout)
	default:
		if err := os.WriteFile(o.jsonOut, append(js, '\n'), 0o644); err != nil {
			return err
		}
		rep.text(stdout)
	}
	if !rep.RealLedgerUntouched {
		return errors.New("the sales ledger's head moved during the rehearsal: a sale was made outside rehearsal mode")
	}
	return nil
}

// RehearsalReport is what `rehearse` ends with.
type RehearsalReport struct {
	Box       string    `json:"box"`
	Started   time.Time `json:"started"`
	Seconds   float64   `json:"seconds"`
	Asked     int       `json:"sales_asked"`
	Rate      float64   `json:"rate_per_s"`
	Completed int       `json:"sales_completed"`
	// ByPath, ByPay: completed sales by transport and payment method.
	ByPath   map[string]int `json:"by_path"`
	ByPay    map[string]int `json:"by_pay"`
	Discreet int            `json:"discreet"`
	SaleMS   Quantiles      `json:"sale_latency_ms"`
	// PathMS is the sale latency by transport.
	PathMS   map[string]Quantiles `json:"sale_latency_ms_by_path"`
	Labels   LabelFigures         `json:"labels"`
	Failures map[string]int       `json:"failures"`
	Cues     CueFigures           `json:"cues"`
	Alerts   AlertFigures         `json:"alerts"`
	// Scans: the labels scanned back (with --scan).
	Scans *ScanFigures `json:"scans,omitempty"`
	// The sales ledger before and after: a rehearsal leaves it alone.
	RealHeadBefore      receipts.Head `json:"real_head_before"`
	RealHeadAfter       receipts.Head `json:"real_head_after"`
	RealLedgerUntouched bool          `json:"real_ledger_untouched"`
	RehearsalHead       uint64        `json:"rehearsal_head"`
}

// Quantiles of a set of durations, in milliseconds.
type Quantiles struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

func quantiles(ms []float64) Quantiles {
	if len(ms) == 0 {
		return Quantiles{}
	}
	s := slices.Clone(ms)
	sort.Float64s(s)
	at := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(s)))) - 1
		return round3(s[max(0, min(i, len(s)-1))])
	}
	return Quantiles{N: len(s), P50: at(0.50), P99: at(0.99), Max: round3(s[len(s)-1])}
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

// LabelFigures: pickup labels of the completed sales. Latency is from
// the receipt's time to the printer's confirmation.
type LabelFigures struct {
	Expected int       `json:"expected"`
	Printed  int       `json:"printed"`
	Marked   int       `json:"marked_rehearsal"`
	Failed   int       `json:"failed"`
	Missing  int       `json:"missing"`
	Latency  Quantiles `json:"latency_ms"`
	Printer  string    `json:"printer"`
}

// ScanFigures: the printed labels' codes scanned back at the pickup
// desk. Latency is of every scan, from request to answer.
type ScanFigures struct {
	Scanned    int       `json:"scanned"`
	HandedOver int       `json:"handed_over"`
	Second     int       `json:"second_scans"`
	Refused    int       `json:"second_scans_refused"`
	Failed     int       `json:"failed"`
	Latency    Quantiles `json:"latency_ms"`
}

// CueFigures: the scene runs seen during the rehearsal, step by step.
type CueFigures struct {
	Runs      int       `json:"runs"`
	Steps     int       `json:"steps"`
	LatenessM Quantiles `json:"lateness_ms"`
	Failed    int       `json:"failed_steps"`
}

// AlertFigures: battery and printer alerts published while it ran.
type AlertFigures struct {
	Battery int      `json:"battery"`
	Printer int      `json:"printer"`
	Seen    []string `json:"seen,omitempty"`
}

func (r *RehearsalReport) text(w io.Writer) {
	fmt.Fprintf(w, "REHEARSAL REPORT  box %s  %s  %.1f s\n", r.Box, r.Started.Format(time.RFC3339), r.Seconds)
	fmt.Fprintf(w, "sales      %d of %d completed at %.1f/s asked  (http %d, mqtt %d; %d discreet)\n",
		r.Completed, r.Asked, r.Rate, r.ByPath["http"], r.ByPath["mqtt"], r.Discreet)
	pays := make([]string, 0, len(r.ByPay))
	for _, p := range receipts.PayMethods {
		pays = append(pays, fmt.Sprintf("%s %d", p, r.ByPay[p]))
	}
	fmt.Fprintf(w, "payments   %s\n", strings.Join(pays, ", "))
	fmt.Fprintf(w, "sale       p50 %.1f ms  p99 %.1f ms  max %.1f ms", r.SaleMS.P50, r.SaleMS.P99, r.SaleMS.Max)
	for _, path := range []string{"http", "mqtt"} {
		if q, ok := r.PathMS[path]; ok {
			fmt.Fprintf(w, "  (%s p50 %.1f p99 %.1f)", path, q.P50, q.P99)
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "labels     %d of %d printed on %s (%d say REHEARSAL, %d failed, %d missing)  p50 %.0f ms  p99 %.0f ms\n",
		r.Labels.Printed, r.Labels.Expected, r.Labels.Printer, r.Labels.Marked, r.Labels.Failed, r.Labels.Missing, r.Labels.Latency.P50, r.Labels.Latency.P99)
	if len(r.Failures) == 0 {
		fmt.Fprintln(w, "failures   none")
	} else {
		kinds := make([]string, 0, len(r.Failures))
		for k, n := range r.Failures {
			kinds = append(kinds, fmt.Sprintf("%s %d", k, n))
		}
		sort.Strings(kinds)
		fmt.Fprintf(w, "failures   %s\n", strings.Join(kinds, ", "))
	}
	fmt.Fprintf(w, "cues       %d runs, %d steps  lateness p50 %.3f ms  p99 %.3f ms  max %.3f ms  (%d failed)\n",
		r.Cues.Runs, r.Cues.Steps, r.Cues.LatenessM.P50, r.Cues.LatenessM.P99, r.Cues.LatenessM.Max, r.Cues.Failed)
	if sc := r.Scans; sc != nil {
		fmt.Fprintf(w, "scans      %d handed over of %d labels, %d of %d second scans refused (%d failed)  p50 %.1f ms  p99 %.1f ms\n",
			sc.HandedOver, sc.Scanned, sc.Refused, sc.Second, sc.Failed, sc.Latency.P50, sc.Latency.P99)
	}
	fmt.Fprintf(w, "alerts     battery %d, printer %d\n", r.Alerts.Battery, r.Alerts.Printer)
	for _, a := range r.Alerts.Seen {
		fmt.Fprintf(w, "           %s\n", a)
	}
	verdict := "untouched"
	if !r.RealLedgerUntouched {
		verdict = "MOVED"
	}
	fmt.Fprintf(w, "sales ledger head #%d -> #%d: %s; rehearsal ledger head #%d\n", r.RealHeadBefore.Seq, r.RealHeadAfter.Seq, verdict, r.RehearsalHead)
}

// saleDone is one completed phantom sale.
type saleDone struct {
	n    int // the sale's number in the run, from 1
	seq  uint64
	box  string
	ts   time.Time
	path string
}

// rehearsal is one run of `rehearse`.
type rehearsal struct {
	o      rehearseOpts
	c      *agentapi.Client
	prefix string
	runID  string

	mu      sync.Mutex
	rep     *RehearsalReport
	lat     []float64
	pathLat map[string][]float64
	done    []saleDone
	stopped error
	replies map[string]chan receipts.MQTTReply
	// ended carries the scenes whose run just ended, from their state
	// topic, for the watcher to read the run's record.
	ended    chan string
	cueRuns  map[string]bool
	cueLate  []float64
	cueSteps int
	cueFail  int
}

func (h *rehearsal) fail(kind string) {
	h.mu.Lock()
	h.rep.Failures[kind]++
	h.mu.Unlock()
}

// rehearse runs the phantom checkouts. It refuses unless the box is in
// rehearsal mode, and stops at the first answer that is not a rehearsal
// receipt (the box was switched back meanwhile).
func rehearse(ctx context.Context, cfg *config.Config, o rehearseOpts) (*RehearsalReport, error) {
	h := &rehearsal{o: o, c: newAgentClient(cfg, o.agent), prefix: cfg.MQTT.Prefix, runID: strings.ToLower(rand.Text()[:6]),
		replies: map[string]chan receipts.MQTTReply{}, cueRuns: map[string]bool{}, ended: make(chan string, 256),
		pathLat: map[string][]float64{}}
	var st receipts.RehearsalStatus
	if err := h.c.Do(ctx, http.MethodGet, "/api/rehearsal", nil, &st); err != nil {
		return nil, fmt.Errorf("reading the rehearsal mode: %w", err)
	}
	if !st.Rehearsal || st.Real == nil {
		return nil, errors.New("the box is not in rehearsal mode: phantom sales would be real; switch it on first (firmware-agent rehearsal on, or the crew page)")
	}
	h.rep = &RehearsalReport{Box: cfg.Box, Asked: o.sales, Rate: o.rate, ByPath: map[string]int{}, ByPay: map[string]int{},
		Failures: map[string]int{}, RealHeadBefore: *st.Real}
	var status struct {
		Sections struct {
			Pickup struct {
				Printer string `json:"printer"`
			} `json:"pickup-labels"`
		} `json:"sections"`
	}
	if err := h.c.Do(ctx, http.MethodGet, "/api/status", nil, &status); err != nil {
		return nil, fmt.Errorf("reading the agent's status: %w", err)
	}
	h.rep.Labels.Printer = status.Sections.Pickup.Printer
	if o.scan && h.rep.Labels.Printer == "" {
		return nil, errors.New("--scan scans the codes off the printed pickup labels, and the box has no pickup printer (receipts.pickup_printer)")
	}

	mc, err := h.connectMQTT(cfg)
	if err != nil {
		return nil, err
	}
	defer mc.Disconnect(250)

	h.rep.Started = time.Now().UTC()
	start := time.Now()
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var watchers sync.WaitGroup
	watchers.Add(1)
	go func() {
		defer watchers.Done()
		h.watchScenes(runCtx)
	}()

	// Labels are followed (and scanned back) while the sales go on, as
	// at a show, not once they are all made.
	driven, labelsDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(labelsDone)
		h.waitLabels(ctx, driven)
	}()
	h.drive(runCtx, mc)
	close(driven)
	<-labelsDone
	h.rep.Seconds = round3(time.Since(start).Seconds())
	cancel()
	watchers.Wait()
	h.sampleScenes(ctx) // the runs that ended since the last look

	if err := h.c.Do(ctx, http.MethodGet, "/api/rehearsal", nil, &st); err != nil {
		return nil, fmt.Errorf("reading the rehearsal mode after the run: %w", err)
	}
	if st.Real != nil {
		h.rep.RealHeadAfter = *st.Real
	}
	h.rep.RehearsalHead = headSeq(st.Ledger)
	h.rep.RealLedgerUntouched = h.rep.RealHeadAfter == h.rep.RealHeadBefore
	h.rep.SaleMS = quantiles(h.lat)
	h.rep.PathMS = map[string]Quantiles{}
	for path, l := range h.pathLat {
		h.rep.PathMS[path] = quantiles(l)
	}
	h.rep.Cues.LatenessM = quantiles(h.cueLate)
	h.rep.Cues.Runs, h.rep.Cues.Steps, h.rep.Cues.Failed = len(h.cueRuns), h.cueSteps, h.cueFail
	if h.stopped != nil {
		return h.rep, h.stopped
	}
	return h.rep, nil
}

// connectMQTT connects to the box's broker and listens for sale replies
// and for battery and printer alerts.
func (h *rehearsal) connectMQTT(cfg *config.Config) (paho.Client, error) {
	broker := h.o.mqttURL
	if broker == "" {
		broker = cfg.MQTT.URL
	}
	if broker == "" {
		host, port, err := net.SplitHostPort(cfg.MQTT.Listen)
		if err != nil {
			return nil, fmt.Errorf("mqtt.listen %q: %w", cfg.MQTT.Listen, err)
		}
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "127.0.0.1"
		}
		broker = "tcp://" + net.JoinHostPort(host, port)
	}
	opts := paho.NewClientOptions().AddBroker(broker).SetClientID("fieldkit-rehearse-" + h.runID).
		SetCleanSession(true).SetAutoReconnect(true).SetConnectTimeout(5 * time.Second).SetOrderMatters(false)
	if cfg.MQTT.Username != "" {
		opts.SetUsername(cfg.MQTT.Username)
		if cfg.MQTT.PasswordFile != "" {
			pw, err := secret.Read(cfg.MQTT.PasswordFile)
			if err != nil {
				return nil, fmt.Errorf("mqtt.password_file: %w", err)
			}
			opts.SetPassword(pw)
		}
	}
	if h.o.mqttOptions != nil {
		h.o.mqttOptions(opts)
	}
	mc := paho.NewClient(opts)
	if tok := mc.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return nil, fmt.Errorf("mqtt %s: cannot connect: %v", broker, tok.Error())
	}
	subs := map[string]byte{
		topic.Under(h.prefix, topic.ReceiptsNew) + "/reply/+": 1,
		topic.Under(h.prefix, topic.BatteryAlert("+")):        1,
		topic.Under(h.prefix, topic.PrinterAlert("+")):        1,
		topic.Under(h.prefix, topic.SceneState("+")):          0,
	}
	tok := mc.SubscribeMultiple(subs, h.onMessage)
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		mc.Disconnect(0)
		return nil, fmt.Errorf("mqtt %s: subscribe: %v", broker, tok.Error())
	}
	return mc, nil
}

func (h *rehearsal) onMessage(_ paho.Client, m paho.Message) {
	t := m.Topic()
	if i := strings.LastIndex(t, "/reply/"); i >= 0 {
		var r receipts.MQTTReply
		if err := json.Unmarshal(m.Payload(), &r); err != nil {
			h.fail("mqtt_bad_reply")
			return
		}
		h.mu.Lock()
		ch := h.replies[t[i+len("/reply/"):]]
		h.mu.Unlock()
		if ch != nil {
			select {
			case ch <- r:
			default:
			}
		}
		return
	}
	rel := strings.TrimPrefix(t, h.prefix+"/")
	if strings.HasPrefix(rel, "scene/") {
		var st struct {
			Scene string `json:"scene"`
			State string `json:"state"`
		}
		if json.Unmarshal(m.Payload(), &st) == nil && st.State != "running" && st.State != "idle" {
			select {
			case h.ended <- st.Scene:
			default: // the final look at every scene catches it
			}
		}
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case strings.HasPrefix(rel, "battery/"):
		h.rep.Alerts.Battery++
	case strings.HasPrefix(rel, "printer/"):
		h.rep.Alerts.Printer++
	}
	if len(h.rep.Alerts.Seen) < 20 {
		h.rep.Alerts.Seen = append(h.rep.Alerts.Seen, rel+" "+string(m.Payload()))
	}
}

// pick says whether sale i (from 1) is one of a share of the sales,
// spread evenly over the run.
func pick(i int, share float64) bool {
	return math.Floor(float64(i)*share) != math.Floor(float64(i-1)*share)
}

// drive sends the sales at the asked rate, at most o.workers in flight.
func (h *rehearsal) drive(ctx context.Context, mc paho.Client) {
	sem := make(chan struct{}, h.o.workers)
	var wg sync.WaitGroup
	interval := time.Duration(float64(time.Second) / h.o.rate)
	next := time.Now()
	for i := 1; i <= h.o.sales; i++ {
		if d := time.Until(next); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
			case <-t.C:
			}
		}
		next = next.Add(interval)
		select {
		case <-ctx.Done():
		case sem <- struct{}{}:
		}
		if ctx.Err() != nil || h.halted() {
			break
		}
		if h.o.scene != "" && h.o.sceneEvery > 0 && i%h.o.sceneEvery == 1 {
			if err := h.c.Do(ctx, http.MethodPost, "/api/scenes/"+url.PathEscape(h.o.scene)+"/run", nil, nil); err != nil {
				var ae *agentapi.Error
				if errors.As(err, &ae) {
					h.fail(fmt.Sprintf("scene_fire_%d", ae.Code))
				} else {
					h.fail("scene_fire")
				}
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			h.sale(ctx, mc, i)
		}()
	}
	wg.Wait()
}

func (h *rehearsal) halted() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.stopped != nil
}

// sale makes phantom sale i and records its answer.
func (h *rehearsal) sale(ctx context.Context, mc paho.Client, i int) {
	pay := receipts.PayMethods[i%len(receipts.PayMethods)]
	discreet := pick(i, h.o.discreet)
	path := "http"
	if pick(i, h.o.mqttShare) {
		path = "mqtt"
	}
	clientID := fmt.Sprintf("rh-%s-%05d", h.runID, i)
	qty := int64(1 + i%3)
	order := map[string]any{
		"client_id": clientID, "order": fmt.Sprintf("R-%s-%d", h.runID, i),
		"items": []map[string]any{{"sku": "REH-TEE", "qty": qty, "price": 1500}},
		"total": qty * 1500, "currency": "EUR", "pay": pay,
		"buyer":    map[string]string{"name": "Phantom Buyer"},
		"discreet": discreet,
	}
	body, _ := json.Marshal(order)
	t0 := time.Now()
	var rc *receipts.Receipt
	var kind string
	if path == "http" {
		rc, kind = h.saleHTTP(ctx, body)
	} else {
		rc, kind = h.saleMQTT(ctx, mc, clientID, body)
	}
	ms := float64(time.Since(t0)) / float64(time.Millisecond)
	if kind == "" && !rc.Rehearsal {
		// The box was switched back mid-run: this sale went into the real
		// ledger. Stop at once and say so.
		kind = "not_rehearsal"
		h.mu.Lock()
		h.stopped = fmt.Errorf("sale %s was answered as a real receipt (#%d): the box left rehearsal mode; rehearsal stopped", clientID, rc.Seq)
		h.mu.Unlock()
	}
	if kind != "" {
		h.fail(kind)
		return
	}
	var ts time.Time
	if rc.Receipt != nil {
		ts, _ = time.Parse(time.RFC3339Nano, rc.Receipt.TS)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lat = append(h.lat, ms)
	h.pathLat[path] = append(h.pathLat[path], ms)
	h.rep.Completed++
	h.rep.ByPath[path]++
	h.rep.ByPay[pay]++
	if discreet {
		h.rep.Discreet++
	}
	box := h.rep.Box
	if rc.Receipt != nil {
		box = rc.Receipt.Box
	}
	h.done = append(h.done, saleDone{n: i, seq: rc.Seq, box: box, ts: ts, path: path})
}

func (h *rehearsal) saleHTTP(ctx context.Context, body []byte) (*receipts.Receipt, string) {
	var rc receipts.Receipt
	cctx, cancel := context.WithTimeout(ctx, h.o.answerWait)
	defer cancel()
	err := h.c.Do(cctx, http.MethodPost, "/api/receipts", body, &rc)
	var ae *agentapi.Error
	switch {
	case errors.As(err, &ae):
		return nil, fmt.Sprintf("http_%d", ae.Code)
	case err != nil:
		return nil, "http_unanswered"
	}
	return &rc, ""
}

func (h *rehearsal) saleMQTT(ctx context.Context, mc paho.Client, clientID string, body []byte) (*receipts.Receipt, string) {
	ch := make(chan receipts.MQTTReply, 1)
	h.mu.Lock()
	h.replies[clientID] = ch
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		delete(h.replies, clientID)
		h.mu.Unlock()
	}()
	tok := mc.Publish(topic.Under(h.prefix, topic.ReceiptsNew), 1, false, body)
	if !tok.WaitTimeout(h.o.answerWait) || tok.Error() != nil {
		return nil, "mqtt_publish"
	}
	t := time.NewTimer(h.o.answerWait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return nil, "mqtt_unanswered"
	case <-t.C:
		return nil, "mqtt_unanswered"
	case r := <-ch:
		if r.Receipt == nil {
			return nil, fmt.Sprintf("mqtt_%d", r.Code)
		}
		return r.Receipt, ""
	}
}

// waitLabels follows every completed sale's pickup label, from while
// the sales are made until driven is closed, until the printer confirms
// it, fails, or labelWait after driven runs out.
func (h *rehearsal) waitLabels(ctx context.Context, driven <-chan struct{}) {
	if h.rep.Labels.Printer == "" {
		// No pickup printer: no label is expected.
		return
	}
	var scans chan labelScan
	if h.o.scan {
		scans = make(chan labelScan, h.o.desks)
		sd := h.startDesks(ctx, scans)
		defer func() {
			close(scans)
			h.rep.Scans = sd.wait()
		}()
	}
	var lat []float64
	var pending []saleDone
	var deadline time.Time // labelWait after the last sale
	for ctx.Err() == nil {
		finished := false
		select {
		case <-driven:
			finished = true
		default:
		}
		// Read after driven: once the drive is over, every sale is in.
		h.mu.Lock()
		pending = append(pending, h.done[h.rep.Labels.Expected:]...)
		h.rep.Labels.Expected = len(h.done)
		h.mu.Unlock()
		if finished && deadline.IsZero() {
			deadline = time.Now().Add(h.o.labelWait)
		}
		if finished && (len(pending) == 0 || !time.Now().Before(deadline)) {
			break
		}
		left := pending[:0]
		for _, s := range pending {
			var job struct {
				State   string     `json:"state"`
				Printed *time.Time `json:"printed"`
				Label   struct {
					Elements []map[string]any `json:"elements"`
				} `json:"label"`
			}
			err := h.c.Do(ctx, http.MethodGet, fmt.Sprintf("/api/jobs/rehearsal-%s-%d", s.box, s.seq), nil, &job)
			var ae *agentapi.Error
			switch {
			case errors.As(err, &ae) && ae.Code == http.StatusNotFound, err != nil:
				left = append(left, s) // not queued yet
			case job.State == "done":
				h.rep.Labels.Printed++
				if labelMarked(job.Label.Elements) {
					h.rep.Labels.Marked++
				} else {
					h.fail("label_not_marked")
				}
				if job.Printed != nil && !s.ts.IsZero() {
					lat = append(lat, float64(job.Printed.Sub(s.ts))/float64(time.Millisecond))
				}
				if scans != nil {
					scans <- labelScan{sale: s, elements: job.Label.Elements}
				}
			case job.State == "failed" || job.State == "cancelled" || job.State == "uncertain":
				h.rep.Labels.Failed++
				h.fail("label_" + job.State)
			default:
				left = append(left, s)
			}
		}
		pending = left
		if len(pending) > 0 || !finished {
			t := time.NewTimer(200 * time.Millisecond)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
		}
	}
	h.rep.Labels.Missing = len(pending)
	if len(pending) > 0 {
		h.mu.Lock()
		h.rep.Failures["label_missing"] += len(pending)
		h.mu.Unlock()
	}
	h.rep.Labels.Latency = quantiles(lat)
}

// labelScan is a printed label for a desk to scan.
type labelScan struct {
	sale     saleDone
	elements []map[string]any
}

// scanDesks are the pickup desks scanning printed labels back.
type scanDesks struct {
	h   *rehearsal
	wg  sync.WaitGroup
	mu  sync.Mutex
	fig ScanFigures
	lat []float64
}

// startDesks starts o.desks desks, each scanning the labels it takes
// from scans until scans is closed.
func (h *rehearsal) startDesks(ctx context.Context, scans <-chan labelScan) *scanDesks {
	d := &scanDesks{h: h}
	for k := 1; k <= h.o.desks; k++ {
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			for ls := range scans {
				d.scanLabel(ctx, ls, k)
			}
		}()
	}
	return d
}

// wait waits for the desks to finish and returns their figures.
func (d *scanDesks) wait() *ScanFigures {
	d.wg.Wait()
	d.fig.Latency = quantiles(d.lat)
	return &d.fig
}

// scanLabel scans one label at desk k as a desk scanner would: sale n's
// QR code for odd n, its CODE128 for even n. A share of the labels is
// scanned again at the next desk, and that second scan must be refused.
func (d *scanDesks) scanLabel(ctx context.Context, ls labelScan, k int) {
	kind := "qr"
	if ls.sale.n%2 == 0 {
		kind = "code128"
	}
	code := labelCode(ls.elements, kind)
	d.mu.Lock()
	d.fig.Scanned++
	d.mu.Unlock()
	if code == "" {
		d.failed("scan_no_" + kind)
		return
	}
	status, rehearsal, ok := d.scan(ctx, code, k)
	switch {
	case !ok:
		return
	case status != http.StatusCreated:
		d.failed(fmt.Sprintf("scan_%d", status))
		return
	case !rehearsal:
		d.failed("scan_not_rehearsal")
		return
	}
	d.mu.Lock()
	d.fig.HandedOver++
	d.mu.Unlock()
	if !pick(ls.sale.n, d.h.o.scanTwice) {
		return
	}
	d.mu.Lock()
	d.fig.Second++
	d.mu.Unlock()
	status, rehearsal, ok = d.scan(ctx, code, k%d.h.o.desks+1)
	switch {
	case !ok:
	case status == http.StatusCreated:
		d.failed("second_scan_handed_over")
	case status != http.StatusConflict || !rehearsal:
		d.failed(fmt.Sprintf("second_scan_%d", status))
	default:
		d.mu.Lock()
		d.fig.Refused++
		d.mu.Unlock()
	}
}

// scan posts one scan at desk k and answers the status and whether the
// answer names a rehearsal order; ok is false (and counted) when there
// was no answer.
func (d *scanDesks) scan(ctx context.Context, code string, k int) (status int, rehearsal, ok bool) {
	body, _ := json.Marshal(map[string]string{"code": code, "by": fmt.Sprintf("rehearsal desk %d", k)})
	var ans struct {
		Rehearsal bool `json:"rehearsal"`
	}
	cctx, cancel := context.WithTimeout(ctx, d.h.o.answerWait)
	defer cancel()
	t0 := time.Now()
	err := d.h.c.Do(cctx, http.MethodPost, "/api/pickup/scan", body, &ans)
	ms := float64(time.Since(t0)) / float64(time.Millisecond)
	status = http.StatusCreated
	var ae *agentapi.Error
	switch {
	case errors.As(err, &ae):
		status = ae.Code
		_ = json.Unmarshal(ae.Body, &ans)
	case err != nil:
		d.failed("scan_unanswered")
		return 0, false, false
	}
	d.mu.Lock()
	d.lat = append(d.lat, ms)
	d.mu.Unlock()
	return status, ans.Rehearsal, true
}

func (d *scanDesks) failed(kind string) {
	d.mu.Lock()
	d.fig.Failed++
	d.mu.Unlock()
	d.h.fail(kind)
}

// labelCode is the data of a label's first element of kind (qr or
// code128), as a scanner reads it off the paper.
func labelCode(els []map[string]any, kind string) string {
	for _, e := range els {
		if s, ok := e[kind].(string); ok {
			return s
		}
	}
	return ""
}

// labelMarked says whether a job's label says REHEARSAL first and last.
func labelMarked(els []map[string]any) bool {
	var texts []string
	for _, e := range els {
		if s, ok := e["text"].(string); ok {
			texts = append(texts, s)
		}
	}
	return len(texts) >= 2 && texts[0] == template.RehearsalMark && strings.HasPrefix(texts[len(texts)-1], template.RehearsalMark)
}

// watchScenes reads the record of every scene run that ends while the
// rehearsal runs, as the scene's state topic says it ended.
func (h *rehearsal) watchScenes(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case name := <-h.ended:
			h.takeRun(ctx, name)
		}
	}
}

// sampleScenes takes every scene's last run, for the runs whose end was
// not heard.
func (h *rehearsal) sampleScenes(ctx context.Context) {
	var list struct {
		Scenes []struct {
			Name string `json:"name"`
		} `json:"scenes"`
	}
	if err := h.c.Do(ctx, http.MethodGet, "/api/scenes", nil, &list); err != nil {
		return
	}
	for _, sc := range list.Scenes {
		h.takeRun(ctx, sc.Name)
	}
}

// takeRun takes a scene's last run into the cue figures, once, if it
// ended and started during the rehearsal.
func (h *rehearsal) takeRun(ctx context.Context, name string) {
	var d struct {
		LastRun *struct {
			Run     uint64     `json:"run"`
			Started time.Time  `json:"started"`
			Ended   *time.Time `json:"ended"`
			Steps   []struct {
				LatenessUS *float64 `json:"lateness_us"`
				Error      string   `json:"error"`
			} `json:"steps"`
		} `json:"last_run"`
	}
	if err := h.c.Do(ctx, http.MethodGet, "/api/scenes/"+url.PathEscape(name), nil, &d); err != nil || d.LastRun == nil {
		return
	}
	r := d.LastRun
	key := fmt.Sprintf("%s#%d", name, r.Run)
	h.mu.Lock()
	defer h.mu.Unlock()
	if r.Ended == nil || r.Started.Before(h.rep.Started) || h.cueRuns[key] {
		return
	}
	h.cueRuns[key] = true
	for _, st := range r.Steps {
		if st.LatenessUS != nil {
			h.cueSteps++
			h.cueLate = append(h.cueLate, *st.LatenessUS/1000)
		}
		if st.Error != "" {
			h.cueFail++
		}
	}
}
