package venue

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"
	"unicode"
)

// Topics under the venue prefix (default fieldkit/venue/<id>). Each box's
// own venue connection has box/<box> as its prefix, so that its
// status (online, and offline by its last will) and its instance probe
// live there too.
const (
	topicFire      = "fire"           // a venue scene's fire, with its start instant
	topicSceneRun  = "scene/+/run"    // the venue's systems ask; the reference box stamps and fires
	topicReportReq = "report/req"     // a box asks every member for its report
	topicPresence  = "presence"       // under box/<box>: retained
	topicTimeReq   = "time/req"       // under box/<reference>: a clock probe
	topicTimeResp  = "time/resp"      // under box/<asker>: the reference's answer
	topicReport    = "report"         // under box/<box>: the answer to a report request
	topicStatus    = "status"         // under box/<box>: online/offline (mqttc and its will)
	boxesWildcard  = "box/+/"         // a filter over every member
	maxMessage     = 64 << 10         // the largest venue message read
	maxFutureStart = 10 * time.Minute // a fire further ahead is refused
)

// idRE is a venue, box or scene id as it appears in a topic level.
var idRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// Presence is what each box keeps retained on box/<box>/presence.
type Presence struct {
	Box      string    `json:"box"`
	Role     string    `json:"role,omitempty"`
	Version  string    `json:"version,omitempty"`
	Instance string    `json:"instance"` // a nonce per process: two live ones for one box id are a duplicate
	Host     string    `json:"host,omitempty"`
	Started  time.Time `json:"started"`
	Updated  time.Time `json:"updated"`
	// Reference is true on a box configured as the venue's time reference.
	Reference bool `json:"reference,omitempty"`
	// OffsetMS is this box's clock minus the reference's, RTTMS the round
	// trip of the sample it came from; absent until measured (and on
	// the reference itself).
	OffsetMS *float64 `json:"offset_ms,omitempty"`
	RTTMS    *float64 `json:"rtt_ms,omitempty"`
	// Health is the worst state of the box's parts, with the reason.
	Health string `json:"health"`
	Reason string `json:"reason,omitempty"`
}

// Fire starts a venue scene on every box at Start.
type Fire struct {
	ID      string          `json:"id"`
	Scene   string          `json:"scene"`
	From    string          `json:"from"`
	Source  string          `json:"source,omitempty"` // what fired it on the sending box (http, mqtt, ...)
	Start   time.Time       `json:"start"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// timeReq is a clock probe: T1 is the asker's send time.
type timeReq struct {
	ID   uint64 `json:"id"`
	From string `json:"from"`
	T1   int64  `json:"t1"` // Unix nanoseconds on the asker's clock
}

// timeResp is the reference's answer: T2 when it read the probe, T3 when
// it sent this, both on its clock.
type timeResp struct {
	ID   uint64 `json:"id"`
	From string `json:"from"`
	T1   int64  `json:"t1"`
	T2   int64  `json:"t2"`
	T3   int64  `json:"t3"`
}

// reportReq asks every member for its end-of-show report.
type reportReq struct {
	ID    string    `json:"id"`
	From  string    `json:"from"`
	Since time.Time `json:"since,omitzero"`
}

// reportAnswer is one member's answer: its verified report, or why there
// is none.
type reportAnswer struct {
	ID     string   `json:"id"`
	Box    string   `json:"box"`
	Report *Summary `json:"report,omitempty"`
	Error  string   `json:"error,omitempty"`
}

func decode(b []byte, v any) error {
	if len(b) > maxMessage {
		return fmt.Errorf("message of %d bytes; expected at most %d", len(b), maxMessage)
	}
	if len(b) == 0 {
		return errors.New("empty message")
	}
	return json.Unmarshal(b, v)
}

func checkID(what, s string) error {
	if !idRE.MatchString(s) {
		return fmt.Errorf("%s %q: expected 1-64 lower-case letters, digits, '-' or '_'", what, s)
	}
	return nil
}

func checkText(what, s string, max int) error {
	if len(s) > max {
		return fmt.Errorf("%s is longer than %d bytes", what, max)
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("%s has an unprintable character %q", what, r)
		}
	}
	return nil
}

// ParseFire reads a fire message, which any client on the broker may
// have sent: a known shape, ids that fit a topic, a start instant.
func ParseFire(b []byte) (Fire, error) {
	var f Fire
	if err := decode(b, &f); err != nil {
		return Fire{}, fmt.Errorf("venue fire: %w", err)
	}
	if err := checkText("id", f.ID, 64); err != nil || f.ID == "" {
		return Fire{}, errors.New("venue fire: id must be 1-64 printable characters")
	}
	if err := checkID("scene", f.Scene); err != nil {
		return Fire{}, fmt.Errorf("venue fire: %w", err)
	}
	if err := checkText("from", f.From, 64); err != nil || f.From == "" {
		return Fire{}, errors.New("venue fire: from must name the sender in 1-64 printable characters")
	}
	if err := checkText("source", f.Source, 128); err != nil {
		return Fire{}, fmt.Errorf("venue fire: %w", err)
	}
	if f.Start.IsZero() {
		return Fire{}, errors.New(`venue fire: start is missing; expected an RFC 3339 time with fractions ("2026-06-01T18:00:00.250Z"); to fire without one, publish on the venue's scene/<name>/run`)
	}
	return f, nil
}

// ParsePresence reads a member's retained presence.
func ParsePresence(b []byte) (Presence, error) {
	var p Presence
	if err := decode(b, &p); err != nil {
		return Presence{}, fmt.Errorf("venue presence: %w", err)
	}
	if err := checkID("box", p.Box); err != nil {
		return Presence{}, fmt.Errorf("venue presence: %w", err)
	}
	for _, f := range []struct{ what, s string }{{"role", p.Role}, {"version", p.Version}, {"instance", p.Instance},
		{"host", p.Host}, {"health", p.Health}} {
		if err := checkText(f.what, f.s, 255); err != nil {
			return Presence{}, fmt.Errorf("venue presence: %w", err)
		}
	}
	if err := checkText("reason", p.Reason, 1024); err != nil {
		return Presence{}, fmt.Errorf("venue presence: %w", err)
	}
	return p, nil
}

func parseTimeReq(b []byte) (timeReq, error) {
	var r timeReq
	if err := decode(b, &r); err != nil {
		return r, fmt.Errorf("clock probe: %w", err)
	}
	if err := checkID("from", r.From); err != nil {
		return r, fmt.Errorf("clock probe: %w", err)
	}
	return r, nil
}

func parseTimeResp(b []byte) (timeResp, error) {
	var r timeResp
	if err := decode(b, &r); err != nil {
		return r, fmt.Errorf("clock answer: %w", err)
	}
	if err := checkID("from", r.From); err != nil {
		return r, fmt.Errorf("clock answer: %w", err)
	}
	if r.T3 < r.T2 {
		return r, errors.New("clock answer: t3 is before t2")
	}
	return r, nil
}

func parseReportReq(b []byte) (reportReq, error) {
	var r reportReq
	if err := decode(b, &r); err != nil {
		return r, fmt.Errorf("report request: %w", err)
	}
	if err := checkText("id", r.ID, 64); err != nil || r.ID == "" {
		return r, errors.New("report request: id must be 1-64 printable characters")
	}
	return r, nil
}

func parseReportAnswer(b []byte) (reportAnswer, error) {
	var a reportAnswer
	if err := decode(b, &a); err != nil {
		return a, fmt.Errorf("report answer: %w", err)
	}
	if err := checkID("box", a.Box); err != nil {
		return a, fmt.Errorf("report answer: %w", err)
	}
	if a.Report == nil && a.Error == "" {
		return a, errors.New("report answer: neither a report nor an error")
	}
	return a, nil
}
