package service

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"fieldkit/printer/fake"
	"fieldkit/printer/queue"
)

// The queue's disk fills while jobs wait for paper: when the paper is
// back no job is left printing; each either prints or fails saying the
// disk is full, and once space is freed the queue takes jobs again.
func TestDiskFullNoJobHangsPrinting(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipped: the disk-full test mounts a small tmpfs, which needs root (run the suite as root, as CI does)")
	}
	r := newRig(t, fastBaud)
	r.dir = t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", r.dir).CombinedOutput(); err != nil {
		t.Skipf("skipped: cannot mount a tmpfs here (%v: %s)", err, bytes.TrimSpace(out))
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", r.dir).Run() })
	r.fp.SetState(fake.PaperOut)
	r.start()
	ids := []string{"a", "b", "c"}
	for _, id := range ids {
		r.submit(id, textLabel(strings.ToUpper(id)))
	}
	for _, id := range ids {
		r.waitJob(id, queue.Parked)
	}
	filler := filepath.Join(r.dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	f.Close()

	// Submitting on a full disk is refused plainly, not half-stored.
	if _, _, err := r.svc.Submit(ctxT(t), "counter", JobRequest{ID: "late", Label: textLabel("LATE")}); err == nil {
		t.Log("the queue still had room in its WAL for one more job")
	}

	r.fp.SetState(fake.Ready)
	settled := func() bool {
		for _, id := range ids {
			j := r.job(id)
			switch {
			case j.State == queue.Done:
			case j.State == queue.Failed && strings.Contains(j.Error, "disk full"):
			default:
				return false
			}
		}
		return true
	}
	// With the disk still full every job reaches an outcome, or the
	// worker says the disk is full and leaves the job waiting; none is
	// left printing.
	waitFor(t, "jobs settled or waiting on the full disk", func() bool {
		if settled() {
			return true
		}
		for _, id := range ids {
			if r.job(id).State == queue.Printing {
				return false
			}
		}
		return strings.Contains(r.svc.States()[0].LastError, "disk full")
	})
	for _, id := range ids {
		j := r.job(id)
		t.Logf("on the full disk, job %s: %s %s", id, j.State, j.Error)
	}
	// Once space is freed all of them settle.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "every job done or failed 'disk full'", settled)
	done := 0
	for _, id := range ids {
		j := r.job(id)
		t.Logf("job %s: %s %s", id, j.State, j.Error)
		if j.State == queue.Done {
			done++
		}
	}
	if r.fp.Printed() != done {
		t.Fatalf("printed %d labels for %d jobs done", r.fp.Printed(), done)
	}
	r.submit("after", textLabel("AFTER"))
	r.waitJob("after", queue.Done)
}
