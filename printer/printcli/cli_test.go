package printcli

import (
	"bytes"
	"context"
	"errors"
	"image/png"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fieldkit/internal/bus"
	"fieldkit/internal/httpapi"
	"fieldkit/printer/label"
	"fieldkit/printer/lang"
	"fieldkit/printer/queue"
	"fieldkit/printer/service"
	"fieldkit/printer/template"
)

func TestPreview(t *testing.T) {
	dir := t.TempDir()
	cfg := service.Config{"shelf": {Profile: label.Profile{Language: label.ZPL, WidthDots: 576}, Transport: "fake"}}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--preview", "testdata/label.json"}, "escpos"},
		{[]string{"--lang", "tspl", "--width", "384", "--preview", "testdata/label.json"}, "tspl"},
		{[]string{"--printer", "shelf", "--preview", "testdata/pickup.json"}, "zpl"},
	} {
		out := filepath.Join(dir, tc.want+".png")
		var stdout, stderr bytes.Buffer
		err := RunCLI(context.Background(), append(tc.args, out), &stdout, &stderr, Env{Printers: cfg})
		if err != nil || !strings.Contains(stdout.String(), tc.want) {
			t.Fatalf("%v: %v; stdout %q stderr %q", tc.args, err, stdout.String(), stderr.String())
		}
		f, err := os.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil || img.Bounds().Dy() < 50 {
			t.Fatalf("%s: %v", out, err)
		}
	}
	var stderr bytes.Buffer
	if err := RunCLI(context.Background(), []string{"--preview", "testdata/label.json"}, &bytes.Buffer{}, &stderr, Env{}); !errors.Is(err, ErrUsage) {
		t.Fatalf("preview without OUT: %v", err)
	}
	if err := RunCLI(context.Background(), []string{"--printer", "nope", "--preview", "testdata/label.json", "x.png"}, &bytes.Buffer{}, &stderr, Env{Printers: cfg}); err == nil {
		t.Fatal("preview for an unknown printer succeeded")
	}
}

// TestPrintThroughTheAgentAPI queues a label with the CLI on a service
// whose printer is the in-process fake, and finds its PNG preview.
func TestPrintThroughTheAgentAPI(t *testing.T) {
	dir := t.TempDir()
	cfg := service.Config{"demo": {Profile: label.Profile{Language: label.ESCPOS, WidthDots: 576}, Transport: "fake", PollInterval: 20 * time.Millisecond}}
	svc, err := service.New(cfg, service.Deps{DataDir: dir, Bus: bus.New(nil)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	defer func() { cancel(); <-done }()
	rt := httpapi.NewRouter(httpapi.OpenAuth{}, nil)
	svc.Routes(rt)
	srv := httptest.NewServer(rt.Handler())
	defer srv.Close()
	env := Env{BaseURL: srv.URL, Printers: cfg}

	var stdout bytes.Buffer
	if err := RunCLI(ctx, []string{"--printer", "demo", "--label", "testdata/pickup.json", "--id", "B-7"}, &stdout, &stdout, env); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), "job B-7 queued on demo") {
		t.Fatalf("stdout %q", stdout.String())
	}
	stdout.Reset()
	if err := RunCLI(ctx, []string{"--printer", "demo", "--label", "testdata/pickup.json", "--id", "B-7"}, &stdout, &stdout, env); err != nil || !strings.Contains(stdout.String(), "already submitted") {
		t.Fatalf("second submit: %v %q", err, stdout.String())
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		j, err := svc.Store().Get(ctx, "B-7")
		if err == nil && j.State == queue.Done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("job not done: %+v %v", j, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := os.Stat(filepath.Join(dir, "previews", "demo", "label-0001.png")); err != nil {
		t.Fatalf("no preview of the printed label: %v", err)
	}
	stdout.Reset()
	if err := RunCLI(ctx, []string{"--list"}, &stdout, &stdout, env); err != nil || !strings.Contains(stdout.String(), "demo") || !strings.Contains(stdout.String(), "ready") {
		t.Fatalf("list: %v %q", err, stdout.String())
	}
	if err := RunCLI(ctx, []string{"--printer", "nope", "--label", "testdata/label.json"}, &stdout, &stdout, env); err == nil || !strings.Contains(err.Error(), "no such printer") {
		t.Fatalf("unknown printer: %v", err)
	}
}

// --bytes writes exactly what the printer is sent, flags in any order,
// and neither it nor --preview asks for the agent's token (which would
// open, and create, the data directory).
func TestBytesAndFlagOrder(t *testing.T) {
	env := Env{Token: func() string { t.Error("token asked for by an offline command"); return "" }}
	want, err := os.ReadFile("testdata/pickup.json")
	if err != nil {
		t.Fatal(err)
	}
	p, err := template.DecodePickup(want)
	if err != nil {
		t.Fatal(err)
	}
	prof := label.Profile{Language: label.ZPL, WidthDots: 406}
	l, err := template.Render(p, prof)
	if err != nil {
		t.Fatal(err)
	}
	j, err := lang.Render(l, prof)
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"--bytes", "testdata/pickup.json", "--lang", "zpl", "--width", "406"},
		{"--lang", "zpl", "--bytes", "testdata/pickup.json", "--width", "406"},
		{"--width", "406", "--lang", "zpl", "--bytes", "testdata/pickup.json"},
	} {
		var stdout, stderr bytes.Buffer
		if err := RunCLI(context.Background(), args, &stdout, &stderr, env); err != nil {
			t.Fatalf("%v: %v %s", args, err, stderr.String())
		}
		if !bytes.Equal(stdout.Bytes(), j.Bytes) {
			t.Errorf("%v: stdout %q\nwant %q", args, stdout.Bytes(), j.Bytes)
		}
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "p.png")
	var stdout, stderr bytes.Buffer
	if err := RunCLI(context.Background(), []string{"--preview", "testdata/pickup.json", out, "--lang", "zpl", "--width", "406"}, &stdout, &stderr, env); err != nil {
		t.Fatalf("preview with flags after the files: %v %s", err, stderr.String())
	}
	if _, err := os.Stat(out); err != nil {
		t.Fatal(err)
	}
	// A label that will not print as asked says so on stderr.
	in := filepath.Join(dir, "cy.json")
	if err := os.WriteFile(in, []byte(`{"order":"Ü-1","buyer":"Наталья 🎉"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout.Reset()
	stderr.Reset()
	if err := RunCLI(context.Background(), []string{"--bytes", in, "--lang", "escpos"}, &stdout, &stderr, env); err != nil {
		t.Fatal(err)
	}
	if s := stderr.String(); !strings.Contains(s, "warning: ") || !strings.Contains(s, "printed as a QR code") || !strings.Contains(s, "1 character(s)") {
		t.Errorf("stderr %q", s)
	}
	if bytes.Contains(stdout.Bytes(), []byte("???")) {
		t.Errorf("Cyrillic sent as question marks: %q", stdout.Bytes())
	}
	if err := RunCLI(context.Background(), []string{"--bytes", "testdata/pickup.json", "--list"}, &stdout, &stderr, env); !errors.Is(err, ErrUsage) {
		t.Errorf("--bytes with --list: %v", err)
	}
}
