package escpos

import (
	"bytes"
	"errors"
	"testing"

	"fieldkit/printer/status"
)

func TestParseStatus(t *testing.T) {
	tests := []struct {
		n     int
		b     byte
		want  status.State
		flags int
	}{
		{PrinterStatus, 0x12, status.Ready, 0},
		{PrinterStatus, 0x16, status.Ready, 0}, // drawer pin, not our business
		{PrinterStatus, 0x1a, status.Offline, 1},
		{PrinterStatus, 0x3a, status.Offline, 2},
		{OfflineCause, 0x12, status.Ready, 0},
		{OfflineCause, 0x16, status.CoverOpen, 1},
		{OfflineCause, 0x32, status.PaperOut, 1},
		{OfflineCause, 0x72, status.PaperOut, 2}, // paper end + error: the cause wins
		{OfflineCause, 0x76, status.CoverOpen, 3},
		{OfflineCause, 0x52, status.Error, 1},
		{OfflineCause, 0x1a, status.Offline, 1},
		{ErrorCause, 0x12, status.Ready, 0},
		{ErrorCause, 0x1a, status.Error, 1},
		{ErrorCause, 0x32, status.Error, 1},
		{ErrorCause, 0x52, status.Error, 1},
		{ErrorCause, 0x16, status.Ready, 0}, // bit 2 undefined on most models
		{PaperSensor, 0x12, status.Ready, 0},
		{PaperSensor, 0x1e, status.PaperLow, 1},
		{PaperSensor, 0x16, status.PaperLow, 1},
		{PaperSensor, 0x72, status.PaperOut, 1},
		{PaperSensor, 0x7e, status.PaperOut, 2},
	}
	for _, tt := range tests {
		r, err := ParseStatus(tt.n, tt.b)
		if err != nil {
			t.Errorf("n=%d 0x%02x: %v", tt.n, tt.b, err)
			continue
		}
		if r.State != tt.want || len(r.Flags) != tt.flags {
			t.Errorf("n=%d 0x%02x: %v, want %v with %d flags", tt.n, tt.b, r, tt.want, tt.flags)
		}
	}
}

func TestParseStatusGarbage(t *testing.T) {
	for _, b := range []byte{0x00, 0xff, 0x13, 0x92, 0x02, 0x10, 'A', 0x1b} {
		r, err := ParseStatus(PaperSensor, b)
		if !errors.Is(err, ErrBadReply) {
			t.Errorf("0x%02x: err = %v, want ErrBadReply", b, err)
		}
		if r.State != status.Error {
			t.Errorf("0x%02x: state %v, want error", b, r.State)
		}
	}
	if _, err := ParseStatus(5, 0x12); err == nil {
		t.Error("DLE EOT 5 accepted")
	}
}

func TestProbes(t *testing.T) {
	ps := Probes()
	if len(ps) != 4 {
		t.Fatalf("%d probes", len(ps))
	}
	replies := []byte{0x1a, 0x16, 0x12, 0x1e} // off line, cover open, -, near end
	var rs []status.Report
	for i, p := range ps {
		if !bytes.Equal(p.Query, []byte{0x10, 0x04, byte(i + 1)}) {
			t.Errorf("probe %d query % x", i, p.Query)
		}
		if p.Complete(nil) != 0 || p.Complete([]byte{1, 2}) != 1 {
			t.Error("Complete")
		}
		r, err := p.Parse(replies[i : i+1])
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
	if got := status.Worst(rs...); got.State != status.CoverOpen || len(got.Flags) != 3 {
		t.Errorf("merged %v", got)
	}
	if _, err := ps[0].Parse(nil); !errors.Is(err, ErrBadReply) {
		t.Errorf("empty reply: %v", err)
	}
}

func FuzzParseStatus(f *testing.F) {
	for _, b := range []byte{0x12, 0x16, 0x1a, 0x32, 0x72, 0x7e, 0x00, 0xff} {
		f.Add(byte(1), b)
		f.Add(byte(4), b)
	}
	f.Fuzz(func(t *testing.T, n, b byte) {
		r, err := ParseStatus(int(n), b)
		valid := b&0x93 == 0x12 && n >= 1 && n <= 4
		if valid != (err == nil) {
			t.Fatalf("n=%d 0x%02x: err %v", n, b, err)
		}
		if err != nil && r.State == status.Ready {
			t.Fatalf("n=%d 0x%02x: a bad reply reads as ready", n, b)
		}
		if err == nil && (r.State == status.Ready) != (len(r.Flags) == 0) {
			t.Fatalf("n=%d 0x%02x: state %v with flags %v", n, b, r.State, r.Flags)
		}
	})
}
