// Package preflight is the pre-show check as the crew sees it: the
// automatic doctor checks, the manual items from the config that a crew
// member signs off, and the go-live gate, open only when every check
// passes and every item is signed off. Gate changes are bus events
// (preflight/gate) that scenes can trigger on.
package preflight

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"fieldkit/internal/clock"
	"fieldkit/internal/confutil"
	"fieldkit/internal/deps"
	"fieldkit/internal/doctor"
)

// GateTopic is the bus topic of gate changes.
const GateTopic = "preflight/gate"

// Config is the preflight: section.
//
//	preflight:
//	  items:
//	    - {id: creator, label: Creator confirmed, owner: producer}
//	    - {id: coupons, label: Coupons staged, owner: host}
type Config struct {
	Items []Item `yaml:"items"`
	// AllowWarn opens the gate while automatic checks warn (never when
	// one fails). Off by default: a warning is something to look at
	// before going live.
	AllowWarn bool `yaml:"allow_warn"`
}

// Item is one manual pre-show item.
type Item struct {
	ID    string `yaml:"id" json:"id"`
	Label string `yaml:"label" json:"label"`
	Owner string `yaml:"owner" json:"owner"`
}

var idRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,47}$`)

// Validate records the section's problems under p.
func (c *Config) Validate(p *confutil.Problems) {
	seen := map[string]bool{}
	for i, it := range c.Items {
		ip := p.At(fmt.Sprintf("items[%d]", i))
		if !idRE.MatchString(it.ID) {
			ip.Addf("id", "%q: expected 1-48 lower-case letters, digits, '_' or '-'", it.ID)
		} else if seen[it.ID] {
			ip.Addf("id", "%q is listed twice", it.ID)
		}
		seen[it.ID] = true
		if strings.TrimSpace(it.Label) == "" {
			ip.Addf("label", "missing; say what the crew confirms, e.g. \"Coupons staged\"")
		}
		if strings.TrimSpace(it.Owner) == "" {
			ip.Addf("owner", "missing; name who signs this item off, e.g. \"host\"")
		}
	}
}

// Publisher is the bus, as far as the gate needs it.
type Publisher interface {
	Publish(topic string, payload []byte)
}

// Deps are what the service needs from the agent.
type Deps struct {
	// Checks returns the automatic checks (read at every run, so that
	// checks added after New are included).
	Checks func() []doctor.Check
	Bus    Publisher
	Clock  clock.Clock
	Log    *slog.Logger
	// Interval between automatic runs (0: 15 s).
	Interval time.Duration
	// Who names the signed-in person behind a request ("" if unknown).
	Who func(r *http.Request) string
}

// Errors answered to the crew.
var (
	ErrUnknownItem = errors.New("no such pre-show item")
	ErrNoSigner    = errors.New("say who signs off (a name)")
	errTooLong     = errors.New("name or note too long (64 and 200 characters at most)")
)

// ItemState is a manual item and its sign-off.
type ItemState struct {
	Item
	SignedBy string     `json:"signed_by,omitempty"`
	SignedAt *time.Time `json:"signed_at,omitempty"`
	Note     string     `json:"note,omitempty"`
}

// Gate is the go-live decision.
type Gate struct {
	Open bool `json:"open"`
	// Blocking names what keeps the gate shut, with the fix.
	Blocking []string  `json:"blocking"`
	Since    time.Time `json:"since"`
}

// State is what the page shows.
type State struct {
	Gate      Gate            `json:"gate"`
	Checks    []doctor.Result `json:"checks"`
	Manual    []ItemState     `json:"manual"`
	CheckedAt time.Time       `json:"checked_at"`
}

// Service keeps the sign-offs and the gate.
type Service struct {
	cfg  Config
	deps Deps
	log  *Log

	mu      sync.Mutex
	signed  map[string]Entry
	results []doctor.Result
	checked time.Time
	gate    Gate
	gateSet bool
	kick    chan struct{}
}

// New opens the sign-off log in dataDir and replays it.
func New(cfg Config, dataDir string, d Deps) (*Service, error) {
	d.Clock, d.Log = deps.Clock(d.Clock), deps.Log(d.Log)
	if d.Interval == 0 {
		d.Interval = 15 * time.Second
	}
	if d.Checks == nil {
		d.Checks = func() []doctor.Check { return nil }
	}
	l, entries, err := OpenLog(dataDir)
	if err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, deps: d, log: l, signed: map[string]Entry{}, kick: make(chan struct{}, 1)}
	for _, e := range entries {
		s.apply(e)
	}
	return s, nil
}

// Close closes the sign-off log.
func (s *Service) Close() error { return s.log.Close() }

func (s *Service) apply(e Entry) {
	switch e.Op {
	case OpSign:
		s.signed[e.Item] = e
	case OpUnsign:
		delete(s.signed, e.Item)
	case OpReset:
		clear(s.signed)
	}
}

func (s *Service) item(id string) (Item, bool) {
	for _, it := range s.cfg.Items {
		if it.ID == id {
			return it, true
		}
	}
	return Item{}, false
}

// Sign records that by signed item off.
func (s *Service) Sign(item, by, note string) error {
	return s.record(Entry{Op: OpSign, Item: item, By: by, Note: note})
}

// Unsign takes a sign-off back (the item is not done after all).
func (s *Service) Unsign(item, by string) error {
	return s.record(Entry{Op: OpUnsign, Item: item, By: by})
}

// Reset clears every sign-off, for the next show.
func (s *Service) Reset(by string) error { return s.record(Entry{Op: OpReset, By: by}) }

func (s *Service) record(e Entry) error {
	e.By = strings.TrimSpace(e.By)
	if e.By == "" {
		return ErrNoSigner
	}
	if len(e.By) > 64 || len(e.Note) > 200 {
		return errTooLong
	}
	if e.Op != OpReset {
		if _, ok := s.item(e.Item); !ok {
			return fmt.Errorf("%w: %q", ErrUnknownItem, e.Item)
		}
	}
	e.At = s.deps.Clock.Now().UTC()
	s.mu.Lock()
	err := s.log.Append(e)
	if err == nil {
		s.apply(e)
	}
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("preflight: recording sign-off: %w", err)
	}
	s.deps.Log.Info("pre-show sign-off", "op", e.Op, "item", e.Item, "by", e.By, "at", e.At.Format(time.RFC3339))
	s.updateGate()
	return nil
}

// Checks are the manual items as doctor checks, so that the doctor
// command and GET /api/preflight list them too. An item not signed off
// warns: nothing is broken, but the show is not ready.
func (s *Service) Checks() []doctor.Check {
	out := make([]doctor.Check, 0, len(s.cfg.Items))
	for _, it := range s.cfg.Items {
		out = append(out, doctor.Check{Name: "sign-off: " + it.Label, Run: func(context.Context) doctor.Result {
			s.mu.Lock()
			e, ok := s.signed[it.ID]
			s.mu.Unlock()
			if !ok {
				return doctor.Warnf(it.Owner+": sign it off on the crew page once it is done", "not signed off yet (owner: %s)", it.Owner)
			}
			return doctor.Pass(fmt.Sprintf("signed off by %s at %s", e.By, e.At.Local().Format("15:04")))
		}})
	}
	return out
}

// Refresh runs the automatic checks now and updates the gate.
func (s *Service) Refresh(ctx context.Context) State {
	rs := doctor.Run(ctx, s.deps.Checks(), 3*time.Second)
	s.mu.Lock()
	s.results, s.checked = rs, s.deps.Clock.Now().UTC()
	s.mu.Unlock()
	s.updateGate()
	return s.State()
}

// Kick asks Run for a check run soon.
func (s *Service) Kick() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Run checks at every interval and on Kick until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	for {
		s.Refresh(ctx)
		t := s.deps.Clock.NewTimer(s.deps.Interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C():
		case <-s.kick:
			t.Stop()
		}
	}
}

// State is the last evaluation with the current sign-offs.
func (s *Service) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := State{Gate: s.gate, Checks: slices.Clone(s.results), CheckedAt: s.checked}
	st.Gate.Blocking = slices.Clone(s.gate.Blocking)
	if st.Checks == nil {
		st.Checks = []doctor.Result{}
	}
	st.Manual = make([]ItemState, 0, len(s.cfg.Items))
	for _, it := range s.cfg.Items {
		is := ItemState{Item: it}
		if e, ok := s.signed[it.ID]; ok {
			at := e.At
			is.SignedBy, is.SignedAt, is.Note = e.By, &at, e.Note
		}
		st.Manual = append(st.Manual, is)
	}
	return st
}

// updateGate recomputes the gate and publishes it when it opens or
// shuts (and the first time).
func (s *Service) updateGate() {
	s.mu.Lock()
	var blocking []string
	if s.checked.IsZero() {
		blocking = append(blocking, "automatic checks have not run yet")
	}
	for _, r := range s.results {
		if r.Status == doctor.Fail || (r.Status == doctor.Warn && !s.cfg.AllowWarn) {
			b := fmt.Sprintf("%s (%s): %s", r.Name, r.Status, r.Detail)
			if r.Fix != "" {
				b += " → " + r.Fix
			}
			blocking = append(blocking, b)
		}
	}
	for _, it := range s.cfg.Items {
		if _, ok := s.signed[it.ID]; !ok {
			blocking = append(blocking, fmt.Sprintf("%s: not signed off (owner: %s)", it.Label, it.Owner))
		}
	}
	open := len(blocking) == 0
	changed := !s.gateSet || open != s.gate.Open
	if changed {
		s.gate.Since = s.deps.Clock.Now().UTC()
	}
	s.gate.Open, s.gate.Blocking, s.gateSet = open, blocking, true
	if s.gate.Blocking == nil {
		s.gate.Blocking = []string{}
	}
	g := s.gate
	s.mu.Unlock()
	if !changed {
		return
	}
	s.deps.Log.Info("go-live gate", "open", g.Open, "blocking", len(g.Blocking))
	if s.deps.Bus != nil {
		b, _ := json.Marshal(g)
		s.deps.Bus.Publish(GateTopic, b)
	}
}
