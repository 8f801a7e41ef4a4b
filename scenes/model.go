package scenes

import (
	"time"

	"fieldkit/drivers/cue"
	"fieldkit/internal/confutil"
	"fieldkit/scenes/schedule"
)

// Policy says what firing a scene that is already running does.
type Policy string

const (
	// Restart cancels the running run and starts over.
	Restart Policy = "restart"
	// Ignore refuses the new fire; the running run goes on.
	Ignore Policy = "ignore"
	// Queue runs the new fire after the running one (and any queued).
	Queue Policy = "queue"
)

// Scope says where a scene runs when fired.
type Scope string

const (
	// ScopeBox runs the scene on this box only.
	ScopeBox Scope = "box"
	// ScopeVenue hands a fire to the venue (Deps.Venue), which starts
	// the scene on every box of the venue at one wall-clock instant.
	ScopeVenue Scope = "venue"
)

// DefaultPolicy is ignore: a double press on a button must not restart a
// countdown the audience is watching.
const DefaultPolicy = Ignore

// Scene is one timeline, as loaded from one file.
type Scene struct {
	Name        string    `yaml:"name" json:"name"`
	Description string    `yaml:"description,omitempty" json:"description,omitempty"`
	Policy      Policy    `yaml:"policy,omitempty" json:"policy"`
	Scope       Scope     `yaml:"scope,omitempty" json:"scope"`
	Triggers    []Trigger `yaml:"triggers,omitempty" json:"triggers"`
	Steps       []Step    `yaml:"steps" json:"steps"`
	// OnCancel are the steps run when the scene is cancelled (not when it
	// is restarted, nor when the agent stops), timed from the cancel.
	// Left out, cancelling switches off every output the steps use; an
	// empty list leaves the outputs as they are.
	OnCancel []Step `yaml:"on_cancel,omitempty" json:"on_cancel,omitempty"`

	// File is where the scene was loaded from.
	File string `yaml:"-" json:"file"`

	doc         *confutil.Doc
	cancelSteps []Step // OnCancel, or the default when it is left out
}

// length is when the scene's last step is due.
func (sc *Scene) length() time.Duration {
	if len(sc.Steps) == 0 {
		return 0
	}
	return sc.Steps[len(sc.Steps)-1].At
}

// Trigger fires a scene. Exactly one of MQTT, Event, Button, Daily and
// Cron is set. Match (MQTT and Event only) requires the payload to be a
// JSON object whose fields (dotted paths for nested ones) equal the given
// values.
type Trigger struct {
	MQTT   string            `yaml:"mqtt,omitempty" json:"mqtt,omitempty"`
	Event  string            `yaml:"event,omitempty" json:"event,omitempty"`
	Button string            `yaml:"button,omitempty" json:"button,omitempty"`
	Daily  string            `yaml:"daily,omitempty" json:"daily,omitempty"`
	Cron   string            `yaml:"cron,omitempty" json:"cron,omitempty"`
	Match  map[string]string `yaml:"match,omitempty" json:"match,omitempty"`

	sched *schedule.Schedule
}

// busFilter is the bus topic filter of an Event or Button trigger.
func (t Trigger) busFilter() string {
	if t.Button != "" {
		return "button/" + t.Button + "/press"
	}
	return t.Event
}

// Step is one entry of the timeline: at At after the start, either a cue
// action on Target (or on each of Targets), a Publish, or a Webhook.
type Step struct {
	At         time.Duration `yaml:"at" json:"at"`
	Target     string        `yaml:"target,omitempty" json:"target,omitempty"`
	Targets    []string      `yaml:"targets,omitempty" json:"targets,omitempty"`
	cue.Action `yaml:",inline"`
	Publish    *Publish `yaml:"publish,omitempty" json:"publish,omitempty"`
	Webhook    *Webhook `yaml:"webhook,omitempty" json:"webhook,omitempty"`

	targets []string // Target and Targets together
}

// Publish sends an MQTT message. Passthrough sends the payload of the
// message (or HTTP body, or event) that fired the scene, unchanged; the
// Payload is then the fallback for fires that carry none. A Payload that
// is not text is sent as JSON.
type Publish struct {
	Topic       string `yaml:"topic" json:"topic"`
	Payload     any    `yaml:"payload,omitempty" json:"payload,omitempty"`
	QoS         int    `yaml:"qos,omitempty" json:"qos,omitempty"`
	Retain      bool   `yaml:"retain,omitempty" json:"retain,omitempty"`
	Passthrough bool   `yaml:"passthrough,omitempty" json:"passthrough,omitempty"`

	body []byte
}

// Webhook POSTs Body (text as is, anything else as JSON) to URL, each try
// bounded by Timeout, retried up to Retries times with backoff. A failure
// is recorded on the step and the run; it never delays other steps.
type Webhook struct {
	URL     string        `yaml:"url" json:"url"`
	Body    any           `yaml:"body,omitempty" json:"body,omitempty"`
	Timeout time.Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	Retries *int          `yaml:"retries,omitempty" json:"retries,omitempty"`

	body []byte
}

// Webhook defaults and bounds.
const (
	DefaultWebhookTimeout = 5 * time.Second
	MaxWebhookTimeout     = time.Minute
	DefaultWebhookRetries = 2
	MaxWebhookRetries     = 5
)

func (w *Webhook) retries() int {
	if w.Retries == nil {
		return DefaultWebhookRetries
	}
	return *w.Retries
}

// kind names what a step does, for records and logs.
func (s *Step) kind() string {
	switch {
	case s.Publish != nil:
		return "publish"
	case s.Webhook != nil:
		return "webhook"
	}
	return "cue"
}
