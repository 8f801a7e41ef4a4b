package main

import (
	"context"
	"encoding/json"
	"errors"
	"fieldkit/internal/agentapi"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"fieldkit/firmware-agent/config"
	"fieldkit/internal/clocksync"
	"fieldkit/internal/mqttc"
	"fieldkit/scenes"
	"fieldkit/sync/receipts"
	"fieldkit/venue"
)

// venuePart is this box's membership of a venue (config venue:).
type venuePart struct {
	*venue.Venue
	scenes *venueScenes
}

func (venuePart) Name() string { return "venue" }

// venueScenes hands venue fires to the scene engine. The engine is built
// after the venue (it relays venue-wide scenes to it), so the agent sets
// it here before anything runs.
type venueScenes struct{ e *scenes.Engine }

func (s *venueScenes) FireAt(name, source string, payload []byte, at time.Time) error {
	if s.e == nil {
		return errors.New("this box runs no scene engine")
	}
	_, err := s.e.FireAt(name, source, payload, at)
	return err
}

// venueReports makes this box's share of the venue's end-of-show report
// from its verified ledger.
type venueReports struct{ rs *receipts.Service }

func (r venueReports) VenueReport(ctx context.Context, since time.Time) (*venue.Summary, error) {
	z, err := r.rs.Report(ctx, since)
	if err != nil {
		return nil, err
	}
	h, err := r.rs.Ledger().Head(ctx)
	if err != nil {
		return nil, err
	}
	s := &venue.Summary{Box: z.Box, Since: z.Since, Count: z.Count, Total: z.Total, Turnover: z.Turnover,
		Currency: z.Currency, FirstSeq: z.FirstSeq, LastSeq: z.LastSeq, Head: h.Hash, BySKU: []venue.SKUTotal{}}
	for _, t := range z.BySKU {
		s.BySKU = append(s.BySKU, venue.SKUTotal{SKU: t.SKU, Qty: t.Qty, Total: t.Total})
	}
	return s, nil
}

// newVenue builds the venue part, nil when the config has no venue:
// section. It has its own MQTT connection on the box's broker and
// account, with the venue's box prefix, so that its last will marks the
// box offline in the venue and its instance probe keeps a second box with
// this id out.
func newVenue(cfg *config.Config, p plumbing, box mqttc.Options, rs *receipts.Service) (*venuePart, error) {
	if cfg.Venue == nil {
		return nil, nil
	}
	vc := cfg.Venue.WithDefaults()
	o := box
	o.ClientID = venue.ClientID(vc.ID, cfg.Box)
	o.Prefix = venue.BoxPrefix(vc.Prefix, cfg.Box)
	o.Instance = p.mqtt.Instance() // one nonce per process, on both connections
	o.OnStatus = nil
	o.Log = p.log.With("conn", "venue")
	conn := mqttc.New(o)
	vs := &venueScenes{}
	ver, _ := agentVersion()
	d := venue.Deps{
		Box: cfg.Box, Version: ver, Conn: conn, Scenes: vs, Synced: clocksync.Kernel{},
		Clock: p.clock, Health: p.health, Metrics: p.metrics, Log: p.log,
	}
	if rs != nil {
		d.Reports = venueReports{rs}
	}
	v, err := venue.New(*cfg.Venue, d)
	if err != nil {
		return nil, err
	}
	return &venuePart{Venue: v, scenes: vs}, nil
}

// cmdVenue runs `venue status|report` against the running agent.
func cmdVenue(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, rest, err := configFromArgs(args, stderr)
	if err != nil {
		return err
	}
	if len(rest) == 0 || (rest[0] != "status" && rest[0] != "report") {
		return fmt.Errorf("%w: venue status | report [--since 8h]", errUsage)
	}
	path := "/api/venue"
	if rest[0] == "report" {
		fs := flag.NewFlagSet("venue report", flag.ContinueOnError)
		fs.SetOutput(stderr)
		since := fs.String("since", "", "an RFC 3339 time or a duration back from now (8h); default: everything kept")
		if err := fs.Parse(rest[1:]); err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		path = "/api/venue/report"
		if *since != "" {
			path += "?since=" + url.QueryEscape(*since)
		}
	}
	var v any
	err = newAgentClient(cfg, "").Do(ctx, http.MethodGet, path, nil, &v)
	if ae := (*agentapi.Error)(nil); errors.As(err, &ae) && ae.Code == http.StatusNotFound {
		return errors.New("venue: this box is in no venue (no venue: section in its config)")
	}
	if err != nil {
		return fmt.Errorf("venue: %w", err)
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
