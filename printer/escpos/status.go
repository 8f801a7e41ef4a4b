package escpos

import (
	"errors"
	"fmt"

	"fieldkit/printer/status"
)

// ErrBadReply is wrapped when a status byte fails its fixed-bit check:
// the printer is not speaking ESC/POS, or the line is garbling bytes.
var ErrBadReply = errors.New("escpos: bad status reply")

// The DLE EOT n queries. Printers answer them in real time, even with a
// full input buffer or while off line.
const (
	PrinterStatus = 1 // off line, waiting for recovery, feed button
	OfflineCause  = 2 // cover open, paper-end stop, error
	ErrorCause    = 3 // cutter, unrecoverable, auto-recoverable (head hot)
	PaperSensor   = 4 // roll near end, roll end
)

// Query returns DLE EOT n.
func Query(n int) []byte { return []byte{DLE, EOT, byte(n)} }

// Every reply has bit 1 and bit 4 set and bits 0 and 7 clear; a byte
// without that pattern is not a status byte.
const (
	fixedMask = 0x93
	fixedBits = 0x12
)

// ParseStatus decodes the one-byte reply to DLE EOT n. A reply that fails
// the fixed-bit check is reported as state Error with an error wrapping
// ErrBadReply; it never reads as ready.
func ParseStatus(n int, b byte) (status.Report, error) {
	if b&fixedMask != fixedBits {
		return status.Report{State: status.Error, Flags: []string{fmt.Sprintf("garbled status 0x%02x", b)}},
			fmt.Errorf("%w: 0x%02x to DLE EOT %d (want bits 1 and 4 set, 0 and 7 clear)", ErrBadReply, b, n)
	}
	r := status.Report{State: status.Ready}
	set := func(mask byte, st status.State, flag string) {
		if b&mask != 0 {
			r.State = status.Worst(r, status.Report{State: st}).State
			r.Flags = append(r.Flags, flag)
		}
	}
	switch n {
	case PrinterStatus:
		set(1<<3, status.Offline, "off line")
		set(1<<5, status.Offline, "waiting for online recovery")
	case OfflineCause:
		set(1<<2, status.CoverOpen, "cover open")
		set(1<<3, status.Offline, "paper fed by button")
		set(1<<5, status.PaperOut, "stopped at paper end")
		set(1<<6, status.Error, "error")
	case ErrorCause:
		set(1<<3, status.Error, "cutter error")
		set(1<<5, status.Error, "unrecoverable error")
		set(1<<6, status.Error, "auto-recoverable error (head too hot?)")
	case PaperSensor:
		// Bits 2-3 and 5-6 come in pairs; some models set both, some
		// one, so either counts.
		set(0x0c, status.PaperLow, "paper near end")
		set(0x60, status.PaperOut, "paper out")
	default:
		return status.Report{State: status.Unknown}, fmt.Errorf("escpos: DLE EOT %d: n must be 1-4", n)
	}
	return r, nil
}

// Probes returns the four status exchanges, in the order to run them.
// Merge their reports with status.Worst.
func Probes() []status.Probe {
	names := map[int]string{PrinterStatus: "printer", OfflineCause: "offline cause", ErrorCause: "error cause", PaperSensor: "paper sensor"}
	var ps []status.Probe
	for n := PrinterStatus; n <= PaperSensor; n++ {
		ps = append(ps, status.Probe{
			Name:     "DLE EOT " + fmt.Sprint(n) + " (" + names[n] + ")",
			Query:    Query(n),
			Complete: oneByte,
			Parse: func(reply []byte) (status.Report, error) {
				if len(reply) != 1 {
					return status.Report{State: status.Error}, fmt.Errorf("%w: %d bytes, want 1", ErrBadReply, len(reply))
				}
				return ParseStatus(n, reply[0])
			},
		})
	}
	return ps
}

func oneByte(buf []byte) int {
	if len(buf) >= 1 {
		return 1
	}
	return 0
}
