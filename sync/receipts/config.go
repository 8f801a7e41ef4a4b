package receipts

import (
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"fieldkit/internal/confutil"
)

// Config is the `receipts:` section of the agent's file.
//
//	receipts:
//	  db: /var/lib/fieldkit/receipts.db      # default <data_dir>/receipts.db
//	  key_file: /var/lib/fieldkit/receipts.key  # made 0600 on first run
//	  currency: EUR
//	  disk_budget_mb: 512
//	  retention_days: 90
//	  discreet_default: false
//	  uplink:
//	    url: https://ingest.example.com/v1/receipts
//	    token_file: /etc/fieldkit/cloud.token
//	    ca_file: /etc/fieldkit/cloud-ca.pem
//	    cert_file: /etc/fieldkit/box.crt
//	    key_file: /etc/fieldkit/box.key
//	    cloud_key_file: /etc/fieldkit/cloud-checkpoint.pem
//	    batch_records: 500
//	    batch_bytes: 262144
type Config struct {
	DB              string `yaml:"db"`
	KeyFile         string `yaml:"key_file"`
	Currency        string `yaml:"currency"`
	DiskBudgetMB    int    `yaml:"disk_budget_mb"`
	RetentionDays   int    `yaml:"retention_days"`
	DiscreetDefault bool   `yaml:"discreet_default"`
	// PickupPrinter, when set, names the printer that gets a pickup label
	// for every new receipt (seq and short hash on it).
	PickupPrinter string       `yaml:"pickup_printer"`
	Uplink        UplinkConfig `yaml:"uplink"`
}

// UplinkConfig is where and how the ledger drains to the cloud. An empty
// URL keeps the receipts on the box (the backlog still shows).
type UplinkConfig struct {
	URL       string `yaml:"url"`
	TokenFile string `yaml:"token_file"`
	CAFile    string `yaml:"ca_file"`
	CertFile  string `yaml:"cert_file"`
	KeyFile   string `yaml:"key_file"`
	// CloudKeyFile is the PEM public key the cloud signs checkpoints with;
	// without it a checkpoint is checked against the key it carries.
	CloudKeyFile string `yaml:"cloud_key_file"`
	BatchRecords int    `yaml:"batch_records"`
	BatchBytes   int    `yaml:"batch_bytes"`
}

// Defaults.
const (
	DefaultDiskBudgetMB  = 512
	DefaultRetentionDays = 90
	DefaultBatchRecords  = 500
	DefaultBatchBytes    = 256 << 10
)

// WithDefaults fills unset keys; files default to dataDir.
func (c Config) WithDefaults(dataDir string) Config {
	if c.DB == "" {
		c.DB = filepath.Join(dataDir, "receipts.db")
	}
	if c.KeyFile == "" {
		c.KeyFile = filepath.Join(dataDir, "receipts.key")
	}
	if c.Currency == "" {
		c.Currency = "EUR"
	}
	if c.DiskBudgetMB == 0 {
		c.DiskBudgetMB = DefaultDiskBudgetMB
	}
	if c.RetentionDays == 0 {
		c.RetentionDays = DefaultRetentionDays
	}
	if c.Uplink.BatchRecords == 0 {
		c.Uplink.BatchRecords = DefaultBatchRecords
	}
	if c.Uplink.BatchBytes == 0 {
		c.Uplink.BatchBytes = DefaultBatchBytes
	}
	return c
}

// Validate records every problem, with paths relative to the section.
func (c *Config) Validate(p *confutil.Problems) {
	if c.Currency != "" && !slices.Contains(Currencies, c.Currency) {
		p.Addf("currency", "unknown currency %q; expected one of %s", c.Currency, strings.Join(Currencies, ", "))
	}
	if c.DiskBudgetMB < 0 {
		p.Addf("disk_budget_mb", "%d; expected a size in MB (0 for the default %d)", c.DiskBudgetMB, DefaultDiskBudgetMB)
	}
	if c.RetentionDays < 0 {
		p.Addf("retention_days", "%d; expected days to keep synced receipts (0 for the default %d)", c.RetentionDays, DefaultRetentionDays)
	}
	if c.KeyFile != "" && c.KeyFile == c.Uplink.KeyFile {
		p.Addf("uplink.key_file", "is the receipt signing key; the TLS client key must be another file")
	}
	c.Uplink.Validate(p.At("uplink"))
}

// Validate checks the uplink keys.
func (u *UplinkConfig) Validate(p *confutil.Problems) {
	if u.URL != "" {
		v, err := url.Parse(u.URL)
		switch {
		case err != nil:
			p.Addf("url", "%q is not a URL: %v", u.URL, err)
		case v.Host == "":
			p.Addf("url", "%q has no host; expected e.g. https://ingest.example.com/v1/receipts", u.URL)
		case v.Scheme == "https":
		case v.Scheme == "http" && isLoopback(v.Hostname()):
		case v.Scheme == "http":
			p.Addf("url", "%q: receipts leave the box over https only (http is allowed on loopback for tests)", u.URL)
		default:
			p.Addf("url", "scheme %q; expected https://", v.Scheme)
		}
	} else if u.TokenFile != "" || u.CAFile != "" || u.CertFile != "" {
		p.Addf("url", "missing; the other uplink keys need the cloud's URL")
	}
	for key, f := range map[string]string{"token_file": u.TokenFile, "ca_file": u.CAFile, "cert_file": u.CertFile, "key_file": u.KeyFile, "cloud_key_file": u.CloudKeyFile} {
		if f == "" {
			continue
		}
		if _, err := os.Stat(f); err != nil {
			p.Addf(key, "cannot read %s: %v", f, err)
		}
	}
	if (u.CertFile == "") != (u.KeyFile == "") {
		p.Addf("cert_file", "a client certificate needs both cert_file and key_file")
	}
	if u.BatchRecords < 0 || u.BatchRecords > 5000 {
		p.Addf("batch_records", "%d; expected 1 to 5000 (0 for the default %d)", u.BatchRecords, DefaultBatchRecords)
	}
	if u.BatchBytes != 0 && (u.BatchBytes < 4<<10 || u.BatchBytes > 8<<20) {
		p.Addf("batch_bytes", "%d; expected 4096 to 8388608 (0 for the default %d)", u.BatchBytes, DefaultBatchBytes)
	}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
