package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"fieldkit/internal/httpapi"
	"fieldkit/printer/label"
	"fieldkit/printer/service"
	"fieldkit/sync/receipts"
)

// zSlipLines is how many report lines fit one label (the label model
// takes 64 elements; a heading and a cut use two).
const zSlipLines = 60

// routeZSlip adds POST /api/receipts/report/print {"printer","since"}:
// the end-of-show report, from the verified ledger, printed as a slip.
// printers is nil when none is configured.
func routeZSlip(rt *httpapi.Router, rs *receipts.Service, printers *service.Service) {
	rt.HandleFunc("POST /api/receipts/report/print", httpapi.Crew, func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Printer string `json:"printer"`
			Since   string `json:"since"`
		}
		if err := httpapi.DecodeJSON(w, r, 4<<10, &req); err != nil {
			httpapi.WriteErr(w, err)
			return
		}
		if printers == nil {
			httpapi.Error(w, http.StatusNotFound, "no printers are configured")
			return
		}
		var since time.Time
		if req.Since != "" {
			t, err := receipts.ParseSince(req.Since, rs.Now())
			if err != nil {
				httpapi.Error(w, http.StatusBadRequest, err.Error())
				return
			}
			since = t
		}
		z, err := rs.Report(r.Context(), since)
		if err != nil {
			httpapi.Error(w, http.StatusConflict, "the ledger does not verify, so no report: "+err.Error())
			return
		}
		lb, err := json.Marshal(zSlip(z))
		if err != nil {
			httpapi.WriteErr(w, err)
			return
		}
		// The same report asked twice is one job; a later one is new.
		from := "all"
		if !since.IsZero() {
			from = since.UTC().Format("20060102T150405Z")
		}
		id := fmt.Sprintf("zreport-%s-%d-%s", z.Box, z.LastSeq, from)
		job, created, err := printers.Submit(r.Context(), req.Printer, service.JobRequest{ID: id, Label: lb})
		if err != nil {
			httpapi.Error(w, http.StatusBadRequest, err.Error())
			return
		}
		code := http.StatusCreated
		if !created {
			code = http.StatusOK
		}
		httpapi.WriteJSON(w, code, job)
	})
}

// zSlip lays the text report out as a label: monospaced lines as the
// report writes them, the heading bold, then a cut. A long show's
// per-minute rows are cut short with a note pointing at the full report.
func zSlip(z *receipts.ZReport) label.Label {
	var buf bytes.Buffer
	z.WriteText(&buf)
	lines := strings.Split(strings.TrimRight(buf.String(), "\n"), "\n")
	if len(lines) > zSlipLines {
		more := len(lines) - (zSlipLines - 1)
		lines = append(lines[:zSlipLines-1], fmt.Sprintf("... %d more lines: see the JSON report", more))
	}
	l := label.Label{ID: "z-report"}
	for i, s := range lines {
		t := label.Text{Text: s}
		if i == 0 {
			t.Bold, t.Size = true, 2
		}
		l.Elements = append(l.Elements, t)
	}
	l.Elements = append(l.Elements, label.Cut{})
	return l
}
