// Package scenecli is "firmware-agent scene ...": it runs, cancels and
// lists scenes on the running agent through its HTTP API.
package scenecli

import (
	"context"
	"encoding/json"
	"errors"
	"fieldkit/internal/agentapi"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"fieldkit/scenes"
)

const usage = `usage: scene run NAME [JSON-PAYLOAD] | scene cancel NAME | scene list | scene show NAME`

// ErrUsage is returned for bad arguments; usage has been printed.
var ErrUsage = errors.New("bad arguments")

// RunCLI runs one scene command against the agent at baseURL
// (http://127.0.0.1:8080), sending token as a bearer token when set.
func RunCLI(ctx context.Context, args []string, stdout, stderr io.Writer, baseURL, token string) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return ErrUsage
	}
	c := agentapi.New(baseURL, token, 10*time.Second)
	cmd, rest := args[0], args[1:]
	switch {
	case cmd == "list" && len(rest) == 0:
		var l scenes.List
		if err := c.Do(ctx, http.MethodGet, "/api/scenes", nil, &l); err != nil {
			return err
		}
		printList(stdout, l)
		return nil
	case cmd == "run" && (len(rest) == 1 || len(rest) == 2):
		var body []byte
		if len(rest) == 2 {
			body = []byte(rest[1])
			if !json.Valid(body) {
				return fmt.Errorf("scene run %s: the payload must be JSON, e.g. '{\"by\":\"crew\"}'", rest[0])
			}
		}
		var r scenes.FireReply
		if err := c.Do(ctx, http.MethodPost, "/api/scenes/"+url.PathEscape(rest[0])+"/run", body, &r); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: %s\n", r.Scene, r.Outcome)
		return nil
	case cmd == "cancel" && len(rest) == 1:
		var r struct {
			Cancelled bool `json:"cancelled"`
		}
		if err := c.Do(ctx, http.MethodPost, "/api/scenes/"+url.PathEscape(rest[0])+"/cancel", nil, &r); err != nil {
			return err
		}
		if r.Cancelled {
			fmt.Fprintf(stdout, "%s: cancelled\n", rest[0])
		} else {
			fmt.Fprintf(stdout, "%s: was not running\n", rest[0])
		}
		return nil
	case cmd == "show" && len(rest) == 1:
		var d scenes.Detail
		if err := c.Do(ctx, http.MethodGet, "/api/scenes/"+url.PathEscape(rest[0]), nil, &d); err != nil {
			return err
		}
		printDetail(stdout, d)
		return nil
	}
	fmt.Fprintln(stderr, usage)
	return ErrUsage
}

func printList(w io.Writer, l scenes.List) {
	if l.LoadError != "" {
		fmt.Fprintf(w, "warning: the last reload of %s was refused:\n%s\n\n", l.Dir, l.LoadError)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATE\tSTEPS\tLENGTH\tPOLICY\tDESCRIPTION")
	for _, s := range l.Scenes {
		state := s.Status.State
		if state == scenes.StateRunning {
			state = fmt.Sprintf("running %d/%d", s.Status.Step, s.Status.Steps)
		}
		if s.Status.Reason != "" {
			state += " (" + s.Status.Reason + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", s.Name, state, s.Steps, s.Length, s.Policy, s.Description)
	}
	tw.Flush()
}

func printDetail(w io.Writer, d scenes.Detail) {
	fmt.Fprintf(w, "%s (%s): %s\n", d.Scene.Name, d.Scene.File, d.Status.State)
	if d.LastRun == nil {
		fmt.Fprintln(w, "never run")
		return
	}
	fmt.Fprintf(w, "last run %d by %s: %s %s\n", d.LastRun.Run, d.LastRun.Trigger, d.LastRun.State, d.LastRun.Reason)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STEP\tAT\tKIND\tTARGETS\tLATE µs\tERROR")
	for _, s := range d.LastRun.Steps {
		late := "-"
		if s.LatenessUS != nil {
			late = fmt.Sprintf("%.0f", *s.LatenessUS)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", s.Step, s.At, s.Kind, strings.Join(s.Targets, ","), late, s.Error)
		for _, o := range s.Outputs {
			what := o.Status
			if o.LandedUS != nil {
				what += fmt.Sprintf(" %+.0f µs", *o.LandedUS)
			}
			fmt.Fprintf(tw, "\t\t\t  %s\t%s\t%s\n", o.Output, what, o.Error)
		}
	}
	tw.Flush()
}
