// Package printcli is "firmware-agent print": it queues a label on the
// running agent through its HTTP API, lists the printers, and renders a
// preview PNG of a label without any agent or printer.
package printcli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"fieldkit/printer/fake"
	"fieldkit/printer/label"
	"fieldkit/printer/lang"
	"fieldkit/printer/queue"
	"fieldkit/printer/service"
	"fieldkit/printer/template"
)

const usage = `usage:
  print --printer NAME --label FILE [--id ID]   queue FILE on the running agent
  print --list                                  the printers, their state and queue
  print --preview FILE OUT.png [--printer NAME | --lang escpos|zpl|tspl --width DOTS]
                                                render FILE as the printer would, no agent needed
FILE is a label ({"elements": [...]}), pickup label data ({"order": ...}) or a
job request ({"id": ..., "label" | "pickup": ...}).`

// ErrUsage is returned for bad arguments; usage has been printed.
var ErrUsage = errors.New("bad arguments")

// Env is what the command needs from the agent's configuration.
type Env struct {
	// BaseURL is the running agent's API (http://127.0.0.1:8080).
	BaseURL string
	// Token is sent as a bearer token when set (the crew token).
	Token string
	// Printers is the config's printers: section, for --preview
	// --printer NAME to use that printer's profile.
	Printers service.Config
}

// RunCLI runs one print command.
func RunCLI(ctx context.Context, args []string, stdout, stderr io.Writer, env Env) error {
	fs := flag.NewFlagSet("print", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	printer := fs.String("printer", "", "printer name")
	file := fs.String("label", "", "label, pickup or job request JSON file")
	id := fs.String("id", "", "job id (the same id twice is one job)")
	preview := fs.String("preview", "", "render this file to a PNG")
	list := fs.Bool("list", false, "list printers")
	langName := fs.String("lang", "", "language for --preview without --printer")
	width := fs.Int("width", 0, "paper width in dots for --preview without --printer")
	if err := fs.Parse(args); err != nil {
		fmt.Fprintf(stderr, "print: %v\n%s\n", err, usage)
		return ErrUsage
	}
	rest := fs.Args()
	switch {
	case *preview != "" && len(rest) == 1 && *file == "" && !*list:
		prof, err := previewProfile(env, *printer, *langName, *width)
		if err != nil {
			return err
		}
		return runPreview(*preview, rest[0], prof, stdout)
	case *list && len(rest) == 0 && *file == "" && *preview == "":
		return runList(ctx, env, stdout)
	case *file != "" && *printer != "" && len(rest) == 0 && *preview == "" && !*list:
		return runPrint(ctx, env, *printer, *file, *id, stdout)
	}
	fmt.Fprintln(stderr, usage)
	return ErrUsage
}

// readRequest reads FILE as a job request, whichever of the three forms
// it is in.
func readRequest(path string) (service.JobRequest, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return service.JobRequest{}, err
	}
	return parseRequest(path, b)
}

// parseRequest tells the three forms apart by their keys.
func parseRequest(path string, b []byte) (service.JobRequest, error) {
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(b, &keys); err != nil {
		return service.JobRequest{}, fmt.Errorf("%s: not a JSON object: %v", path, err)
	}
	_, isLabel := keys["elements"]
	_, isPickup := keys["order"]
	_, hasLabel := keys["label"]
	_, hasPickup := keys["pickup"]
	switch {
	case isLabel:
		return service.JobRequest{Label: b}, nil
	case isPickup:
		return service.JobRequest{Pickup: b}, nil
	case hasLabel || hasPickup:
		var r service.JobRequest
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&r); err != nil {
			return r, fmt.Errorf("%s: %v", path, err)
		}
		return r, nil
	}
	return service.JobRequest{}, fmt.Errorf(`%s: expected a label ({"elements": [...]}), pickup data ({"order": ...}) or a job request ({"label": ...})`, path)
}

func previewProfile(env Env, printer, langName string, width int) (label.Profile, error) {
	if printer != "" {
		if langName != "" || width != 0 {
			return label.Profile{}, fmt.Errorf("print --preview: give --printer or --lang/--width, not both")
		}
		p, ok := env.Printers[printer]
		if !ok {
			return label.Profile{}, fmt.Errorf("print --preview: no printer %q in the config", printer)
		}
		return p.Profile.WithDefaults(), nil
	}
	if langName == "" {
		langName = string(label.ESCPOS)
	}
	prof := label.Profile{Language: label.Language(langName), WidthDots: width}.WithDefaults()
	if err := prof.Check(); err != nil {
		return prof, fmt.Errorf("print --preview: %w", err)
	}
	return prof, nil
}

func runPreview(in, out string, prof label.Profile, stdout io.Writer) error {
	r, err := readRequest(in)
	if err != nil {
		return err
	}
	var l label.Label
	if len(r.Pickup) > 0 {
		p, err := template.DecodePickup(r.Pickup)
		if err == nil {
			l, err = template.Render(p, prof)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", in, err)
		}
	} else if l, err = label.Decode(r.Label); err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	data, err := lang.Encode(l, prof)
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	png, err := fake.RenderPNG(string(prof.Language), data, prof.WidthDots)
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	if err := os.WriteFile(out, png, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %s, %d bytes on the wire, %d dots wide\n", out, prof.Language, len(data), prof.WidthDots)
	return nil
}

func runPrint(ctx context.Context, env Env, printer, file, id string, stdout io.Writer) error {
	r, err := readRequest(file)
	if err != nil {
		return err
	}
	if id != "" {
		r.ID = id
	}
	body, _ := json.Marshal(r)
	var j queue.Job
	code, err := do(ctx, env, http.MethodPost, "/api/printers/"+url.PathEscape(printer)+"/jobs", body, &j)
	if err != nil {
		return err
	}
	if code == http.StatusCreated {
		fmt.Fprintf(stdout, "job %s queued on %s\n", j.ID, printer)
	} else {
		fmt.Fprintf(stdout, "job %s was already submitted; it is %s\n", j.ID, j.State)
	}
	return nil
}

func runList(ctx context.Context, env Env, stdout io.Writer) error {
	var sts []service.PrinterState
	if _, err := do(ctx, env, http.MethodGet, "/api/printers", nil, &sts); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PRINTER\tSTATE\tQUEUE\tUNCERTAIN\tDEVICE\tDETAIL")
	for _, s := range sts {
		state := s.State.String()
		if s.Parked {
			state += " (parked)"
		}
		detail := strings.Join(s.Flags, ", ")
		if s.LastError != "" {
			detail = strings.TrimPrefix(detail+"; last error: "+s.LastError, "; ")
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\n", s.Name, state, s.QueueDepth, s.Uncertain, s.Device, detail)
	}
	return tw.Flush()
}

func do(ctx context.Context, env Env, method, path string, body []byte, out any) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(env.BaseURL, "/")+path, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if env.Token != "" {
		req.Header.Set("Authorization", "Bearer "+env.Token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("is the agent running? %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode >= 300 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return resp.StatusCode, fmt.Errorf("%s %s: %s", method, path, e.Error)
		}
		return resp.StatusCode, fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return resp.StatusCode, fmt.Errorf("%s %s: bad reply: %v", method, path, err)
	}
	return resp.StatusCode, nil
}
