// Package config is the agent's one YAML file: the core keys here, and a
// section per part whose type the part owns. Loading is strict; every
// problem comes back as "file:line: what was wrong, what was expected".
package config

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"fieldkit/battery"
	"fieldkit/boards"
	"fieldkit/drivers/outputs"
	"fieldkit/drivers/scanner"
	"fieldkit/internal/confutil"
	printers "fieldkit/printer/service"
	"fieldkit/scenes"
	"fieldkit/sync/receipts"
	"fieldkit/web/preflight"
)

// Config is the whole file.
type Config struct {
	// Box is this box's id: MQTT topics, client id, receipts.
	Box string `yaml:"box"`
	// Board is a profile name or "auto" (detect from the device tree).
	Board string `yaml:"board"`
	// Pins maps logical names used elsewhere in the config (outputs,
	// buttons) to GPIO line names on the board ("GPIO17").
	Pins map[string]string `yaml:"pins"`
	// DataDir holds the databases, keys and tokens.
	DataDir string `yaml:"data_dir"`
	HTTP    HTTP   `yaml:"http"`
	MQTT    MQTT   `yaml:"mqtt"`
	Log     Log    `yaml:"log"`
	// Cues holds the top-level outputs: and buttons: sections.
	Cues outputs.Config `yaml:",inline"`
	// Preflight lists the manual pre-show items crew members sign off.
	Preflight preflight.Config `yaml:"preflight"`
	// Batteries lists the battery rigs the battery watch follows.
	Batteries battery.Config `yaml:"batteries"`
	// Printers are the label printers, by name.
	Printers printers.Config `yaml:"printers"`
	// Receipts is the signed receipt ledger and its uplink.
	Receipts receipts.Config `yaml:"receipts"`
	// Scanners are the barcode scanners at the pickup desk.
	Scanners scanner.Config `yaml:"scanners"`
	// Scenes is where the scene files are.
	Scenes scenes.Config `yaml:"scenes"`

	// File is where the config came from ("" for the built-in demo).
	File string `yaml:"-"`
	// Doc maps paths back to lines, for parts that validate later.
	Doc *confutil.Doc `yaml:"-"`
}

// HTTP is the local API and crew page.
type HTTP struct {
	Listen string `yaml:"listen"`
	// Auth is "auto" (tokens required unless listen is loopback),
	// "required" or "open" (loopback only).
	Auth string `yaml:"auth"`
	// TLSCert and TLSKey are PEM files; both set serves HTTPS.
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
}

// MQTT names an external broker (URL) or the embedded one (Listen).
type MQTT struct {
	URL          string `yaml:"url"`
	Listen       string `yaml:"listen"`
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"password_file"`
	CAFile       string `yaml:"ca_file"`
	// Prefix of the box's topics; default fieldkit/<box>.
	Prefix string `yaml:"prefix"`
	// Users may log in to the embedded broker besides the agent itself.
	Users []MQTTUser `yaml:"users"`
}

// MQTTUser is an account on the embedded broker. A user with a wearable
// is kept to that wearable's cue topics.
type MQTTUser struct {
	Name         string `yaml:"name"`
	PasswordFile string `yaml:"password_file"`
	Wearable     string `yaml:"wearable"`
}

// Log settings.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text, json
}

// Defaults used when a key is absent.
const (
	// DefaultBox is the demo's box id; a config file must name its own.
	DefaultBox        = "demo"
	DefaultHTTP       = "127.0.0.1:8080"
	DefaultMQTTListen = "127.0.0.1:1883"
	DefaultDataDir    = "./fieldkit-data"
)

// Demo is the configuration used when no file is given: the sim board,
// the embedded broker, everything on loopback.
func Demo() *Config {
	c := &Config{Board: "sim", Box: DefaultBox}
	c.applyDefaults()
	return c
}

// Load reads, decodes and validates path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, data)
}

// Parse decodes and validates data as if read from file.
func Parse(file string, data []byte) (*Config, error) {
	c := &Config{}
	doc, err := confutil.Decode(file, data, c)
	if err != nil {
		return nil, err
	}
	c.File, c.Doc = file, doc
	c.applyDefaults()
	p := confutil.NewProblems()
	c.Validate(p)
	if err := doc.Err(p); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Config) applyDefaults() {
	if c.Board == "" {
		c.Board = "auto"
	}
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	if c.HTTP.Listen == "" {
		c.HTTP.Listen = DefaultHTTP
	}
	if c.MQTT.URL == "" && c.MQTT.Listen == "" {
		c.MQTT.Listen = DefaultMQTTListen
	}
	if c.MQTT.Prefix == "" && c.Box != "" {
		c.MQTT.Prefix = "fieldkit/" + c.Box
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "text"
	}
}

var boxRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)

// Validate records every problem in c.
func (c *Config) Validate(p *confutil.Problems) {
	if c.Box == "" {
		// Defaulting would give every box installed from one image the
		// same id, and boxes with one id knock each other off the broker.
		p.Addf("box", "missing; set box: to an id of this box's own (e.g. its host name), 1-32 lower-case letters, digits or '-'")
	} else if !boxRE.MatchString(c.Box) {
		p.Addf("box", "%q is not a valid box id; expected 1-32 lower-case letters, digits or '-', starting with a letter or digit", c.Box)
	}
	if names := boards.Names(); !slices.Contains(names, c.Board) {
		p.Addf("board", "unknown board %q; expected one of: %s", c.Board, strings.Join(names, ", "))
	}
	for name, line := range c.Pins {
		if !pinNameRE.MatchString(name) {
			p.Addf("pins."+name, "pin name %q: expected lower-case letters, digits, '_' or '-'", name)
		}
		if !lineRE.MatchString(line) {
			p.Addf("pins."+name, "%q is not a GPIO line name; expected e.g. GPIO17", line)
		}
	}
	if err := checkListen(c.HTTP.Listen); err != nil {
		p.Addf("http.listen", "%v", err)
	}
	c.validateMQTT(p.At("mqtt"))
	c.Cues.Validate(p.At(""))
	c.validateSecurity(p)
	c.Preflight.Validate(p.At("preflight"))
	c.Batteries.Validate(p.At("batteries"))
	c.Printers.Validate(p.At("printers"))
	c.Receipts.Validate(p.At("receipts"))
	if pp := c.Receipts.PickupPrinter; pp != "" {
		if _, ok := c.Printers[pp]; !ok {
			p.Addf("receipts.pickup_printer", "no printer named %q; define it under printers: or leave pickup_printer out", pp)
		}
	}
	c.Scanners.Validate(p.At("scanners"))
	c.Scenes.Validate(p.At("scenes"))
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		p.Addf("log.level", "unknown level %q; expected debug, info, warn or error", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		p.Addf("log.format", "unknown format %q; expected text or json", c.Log.Format)
	}
}

var (
	pinNameRE = regexp.MustCompile(`^[a-z0-9_-]+$`)
	lineRE    = regexp.MustCompile(`^GPIO[0-9]{1,3}$`)
)

func (c *Config) validateMQTT(p *confutil.Problems) {
	m := c.MQTT
	if m.URL != "" && m.Listen != "" {
		p.Addf("listen", "set either url (an external broker) or listen (the embedded broker), not both")
	}
	if m.URL != "" {
		u, err := url.Parse(m.URL)
		switch {
		case err != nil:
			p.Addf("url", "%q is not a URL: %v", m.URL, err)
		case u.Scheme != "tcp" && u.Scheme != "ssl" && u.Scheme != "tls" && u.Scheme != "mqtt" && u.Scheme != "mqtts":
			p.Addf("url", "scheme %q is not supported; expected tcp://host:1883 or ssl://host:8883", u.Scheme)
		case u.Hostname() == "":
			p.Addf("url", "%q has no host; expected e.g. tcp://broker.local:1883", m.URL)
		}
	}
	if m.Listen != "" {
		if err := checkListen(m.Listen); err != nil {
			p.Addf("listen", "%v", err)
		}
	}
	if m.PasswordFile != "" && m.Username == "" {
		p.Addf("password_file", "a password file without a username; set mqtt.username too")
	}
	for key, f := range map[string]string{"password_file": m.PasswordFile, "ca_file": m.CAFile} {
		if f == "" {
			continue
		}
		if _, err := os.Stat(f); err != nil {
			p.Addf(key, "cannot read %s: %v", f, unwrapPathErr(err))
		}
	}
	if m.CAFile != "" && m.URL == "" {
		p.Addf("ca_file", "a CA file is only used with an external broker (mqtt.url: ssl://...)")
	}
	if strings.ContainsAny(m.Prefix, "+#") || strings.HasSuffix(m.Prefix, "/") || strings.HasPrefix(m.Prefix, "/") {
		p.Addf("prefix", "%q: expected topic levels without wildcards or leading/trailing '/', e.g. fieldkit/box1", m.Prefix)
	}
}

func checkListen(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port (e.g. 127.0.0.1:8080 or 0.0.0.0:8080)", addr)
	}
	if host != "" && host != "localhost" && net.ParseIP(host) == nil {
		return fmt.Errorf("%q: host must be an IP address, localhost or empty", addr)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q: port must be 0-65535", addr)
	}
	return nil
}

// Loopback reports whether addr listens only on the loopback interface.
func Loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func unwrapPathErr(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

// Auth modes for http.auth.
const (
	AuthAuto     = "auto"
	AuthRequired = "required"
	AuthOpen     = "open"
)

// AuthOn reports whether HTTP callers must present a token: always
// off loopback, and on loopback when the config asks for it.
func (h HTTP) AuthOn() bool {
	return h.Auth == AuthRequired || !Loopback(h.Listen)
}

var wearableRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

// validateSecurity checks the HTTP auth and TLS keys and the embedded
// broker's accounts: a broker reachable from the venue network must not
// take anonymous clients.
func (c *Config) validateSecurity(p *confutil.Problems) {
	h := c.HTTP
	switch h.Auth {
	case "", AuthAuto, AuthRequired:
	case AuthOpen:
		if !Loopback(h.Listen) {
			p.Addf("http.auth", "open (no tokens) is only allowed when http.listen is loopback, not %s; use auto or required", h.Listen)
		}
	default:
		p.Addf("http.auth", "unknown mode %q; expected auto, required or open", h.Auth)
	}
	if (h.TLSCert == "") != (h.TLSKey == "") {
		p.Addf("http.tls_cert", "set both tls_cert and tls_key, or neither")
	}
	for key, f := range map[string]string{"http.tls_cert": h.TLSCert, "http.tls_key": h.TLSKey} {
		if f == "" {
			continue
		}
		if _, err := os.Stat(f); err != nil {
			p.Addf(key, "cannot read %s: %v", f, unwrapPathErr(err))
		}
	}
	m := c.MQTT
	if m.URL == "" && m.Listen != "" && !Loopback(m.Listen) && (m.Username == "" || m.PasswordFile == "") {
		p.Addf("mqtt.username", "the embedded broker listens on %s, beyond this box: set mqtt.username and mqtt.password_file (the agent's own account) and list other clients in mqtt.users", m.Listen)
	}
	if len(m.Users) > 0 && m.URL != "" {
		p.Addf("mqtt.users", "users are accounts on the embedded broker; with an external broker (mqtt.url) configure them there")
	}
	seen := map[string]bool{m.Username: m.Username != ""}
	for i, u := range m.Users {
		up := p.At(fmt.Sprintf("mqtt.users[%d]", i))
		switch {
		case u.Name == "":
			up.Addf("name", "missing; every MQTT user needs a name")
		case seen[u.Name]:
			up.Addf("name", "%q is listed twice (or is the agent's own mqtt.username)", u.Name)
		}
		seen[u.Name] = true
		if u.PasswordFile == "" {
			up.Addf("password_file", "missing; put the user's password in a file (mode 0600) and name it here")
		} else if _, err := os.Stat(u.PasswordFile); err != nil {
			up.Addf("password_file", "cannot read %s: %v", u.PasswordFile, unwrapPathErr(err))
		}
		if u.Wearable != "" && !wearableRE.MatchString(u.Wearable) {
			up.Addf("wearable", "%q: expected 1-32 lower-case letters, digits, '_' or '-'", u.Wearable)
		}
	}
}
