// Package printcli is "firmware-agent print": it queues a label on the
// running agent through its HTTP API, lists the printers, and, without any
// agent, printer or data directory, renders a preview PNG of a label or
// writes the exact bytes a printer would receive.
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
  print --bytes FILE [--printer NAME | --lang escpos|zpl|tspl --width DOTS]
                                                write the bytes the printer would receive to stdout
FILE is a label ({"elements": [...]}), pickup label data ({"order": ...}) or a
job request ({"id": ..., "label" | "pickup": ...}). Flags go in any order.
What will not print as asked is reported on stderr as "warning: ...".`

// ErrUsage is returned for bad arguments; usage has been printed.
var ErrUsage = errors.New("bad arguments")

// Env is what the command needs from the agent's configuration.
type Env struct {
	// BaseURL is the running agent's API (http://127.0.0.1:8080).
	BaseURL string
	// Token returns the bearer token to send (the crew token), or "";
	// it is only asked for by the commands that talk to the agent, so
	// that --preview and --bytes touch no data directory.
	Token func() string
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
	raw := fs.String("bytes", "", "write the printer's bytes for this file to stdout")
	list := fs.Bool("list", false, "list printers")
	langName := fs.String("lang", "", "language for --preview/--bytes without --printer")
	width := fs.Int("width", 0, "paper width in dots for --preview/--bytes without --printer")
	rest, err := parseInterspersed(fs, args)
	if err != nil {
		fmt.Fprintf(stderr, "print: %v\n%s\n", err, usage)
		return ErrUsage
	}
	offline := *preview != "" || *raw != ""
	switch {
	case *preview != "" && *raw == "" && len(rest) == 1 && *file == "" && !*list:
		prof, err := previewProfile(env, *printer, *langName, *width)
		if err != nil {
			return err
		}
		return runPreview(*preview, rest[0], prof, stdout, stderr)
	case *raw != "" && *preview == "" && len(rest) == 0 && *file == "" && !*list:
		prof, err := previewProfile(env, *printer, *langName, *width)
		if err != nil {
			return err
		}
		return runBytes(*raw, prof, stdout, stderr)
	case !offline && *list && len(rest) == 0 && *file == "":
		return runList(ctx, env, stdout)
	case !offline && *file != "" && *printer != "" && len(rest) == 0 && !*list:
		return runPrint(ctx, env, *printer, *file, *id, stdout, stderr)
	}
	fmt.Fprintln(stderr, usage)
	return ErrUsage
}

// parseInterspersed parses flags wherever they are among the positional
// arguments ("--preview FILE OUT --lang zpl" as well as "--lang zpl
// --preview FILE OUT"); "--" ends the flags.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return rest, nil
		}
		if args[0] == "--" {
			return append(rest, args[1:]...), nil
		}
		rest = append(rest, args[0])
		args = args[1:]
	}
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
			return label.Profile{}, fmt.Errorf("print: give --printer or --lang/--width, not both")
		}
		p, ok := env.Printers[printer]
		if !ok {
			return label.Profile{}, fmt.Errorf("print: no printer %q in the config", printer)
		}
		return p.Profile.WithDefaults(), nil
	}
	if langName == "" {
		langName = string(label.ESCPOS)
	}
	prof := label.Profile{Language: label.Language(langName), WidthDots: width}.WithDefaults()
	if err := prof.Check(); err != nil {
		return prof, fmt.Errorf("print: %w", err)
	}
	return prof, nil
}

// render reads FILE and lays it out and encodes it for prof, reporting
// what will not print as asked on stderr.
func render(in string, prof label.Profile, stderr io.Writer) (lang.Job, error) {
	r, err := readRequest(in)
	if err != nil {
		return lang.Job{}, err
	}
	var l label.Label
	if len(r.Pickup) > 0 {
		p, err := template.DecodePickup(r.Pickup)
		if err == nil {
			l, err = template.Render(p, prof)
		}
		if err != nil {
			return lang.Job{}, fmt.Errorf("%s: %w", in, err)
		}
	} else if l, err = label.Decode(r.Label); err != nil {
		return lang.Job{}, fmt.Errorf("%s: %w", in, err)
	}
	j, err := lang.Render(l, prof)
	if err != nil {
		return lang.Job{}, fmt.Errorf("%s: %w", in, err)
	}
	for _, w := range j.Warnings {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	return j, nil
}

func runPreview(in, out string, prof label.Profile, stdout, stderr io.Writer) error {
	j, err := render(in, prof, stderr)
	if err != nil {
		return err
	}
	// Drawn from the layout the bytes were made from: the preview shows
	// what the printer prints, labels one under the other.
	png, err := fake.LayoutPNG(j.Layout)
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	if err := os.WriteFile(out, png, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %s, %d bytes on the wire, %d dots wide, %d label(s)\n", out, prof.Language, len(j.Bytes), prof.WidthDots, len(j.Layout.Pages))
	return nil
}

func runBytes(in string, prof label.Profile, stdout, stderr io.Writer) error {
	j, err := render(in, prof, stderr)
	if err != nil {
		return err
	}
	_, err = stdout.Write(j.Bytes)
	return err
}

func runPrint(ctx context.Context, env Env, printer, file, id string, stdout, stderr io.Writer) error {
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
	for _, w := range j.Warnings {
		fmt.Fprintf(stderr, "warning: %s\n", w)
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
	if env.Token != nil {
		if tok := env.Token(); tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
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
