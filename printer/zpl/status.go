package zpl

import (
	"bytes"
	"errors"
	"fmt"

	"fieldkit/printer/status"
)

// ErrBadReply is wrapped when a ~HS reply is not three well-formed lines.
var ErrBadReply = errors.New("zpl: bad ~HS reply")

// HostStatus is the host status query. The printer answers with three
// lines, each <STX>fields<ETX><CR><LF>.
var HostStatus = []byte("~HS")

const (
	stx = 0x02
	etx = 0x03
)

// Complete returns the length of a whole ~HS reply at the start of buf
// (through the third ETX and a CR LF after it, if present), or 0.
func Complete(buf []byte) int {
	n := 0
	for i, c := range buf {
		if c != etx {
			continue
		}
		n++
		if n == 3 {
			end := i + 1
			for end < len(buf) && end < i+3 && (buf[end] == '\r' || buf[end] == '\n') {
				end++
			}
			return end
		}
	}
	return 0
}

// ParseHostStatus reads a ~HS reply. Fields, as numbered in the ZPL guide:
//
//	line 1: aaa,b,c,dddd,eee,f,g,h,iii,j,k,l   b paper out, c pause,
//	        f buffer full, j corrupt RAM, k under temperature, l over
//	line 2: mmm,n,o,p,q,r,s,t,uuuuuuuu,v,www    o head up, p ribbon out,
//	        t label waiting
//	line 3: xxxx,y
//
// Ribbon out reads as paper out (a consumable to load, then the queue
// resumes); head up as cover open; pause as offline.
func ParseHostStatus(reply []byte) (status.Report, error) {
	lines, err := split(reply)
	if err != nil {
		return status.Report{State: status.Error, Flags: []string{"garbled ~HS reply"}}, err
	}
	r := status.Report{State: status.Ready}
	set := func(field []byte, st status.State, flag string) {
		if !allZero(field) {
			r.State = status.Worst(r, status.Report{State: st}).State
			r.Flags = append(r.Flags, flag)
		}
	}
	l1, l2 := lines[0], lines[1]
	set(l1[1], status.PaperOut, "paper out")
	set(l1[2], status.Offline, "paused")
	set(l1[5], status.Ready, "receive buffer full")
	set(l1[9], status.Error, "corrupt RAM")
	set(l1[10], status.Error, "head under temperature")
	set(l1[11], status.Error, "head over temperature")
	set(l2[2], status.CoverOpen, "head open")
	set(l2[3], status.PaperOut, "ribbon out")
	set(l2[7], status.Ready, "label waiting to be taken")
	return r, nil
}

var fieldCounts = [3]int{12, 11, 2}

// split returns the comma-separated fields of the three lines, checking
// the framing, the field counts and that every field is decimal.
func split(reply []byte) ([3][][]byte, error) {
	var lines [3][][]byte
	rest := reply
	for i := range lines {
		start := bytes.IndexByte(rest, stx)
		if start < 0 {
			return lines, fmt.Errorf("%w: line %d: no STX", ErrBadReply, i+1)
		}
		if len(bytes.Trim(rest[:start], "\r\n")) > 0 {
			return lines, fmt.Errorf("%w: line %d: %q before STX", ErrBadReply, i+1, rest[:start])
		}
		end := bytes.IndexByte(rest[start:], etx)
		if end < 0 {
			return lines, fmt.Errorf("%w: line %d: no ETX", ErrBadReply, i+1)
		}
		body := rest[start+1 : start+end]
		rest = rest[start+end+1:]
		fields := bytes.Split(body, []byte(","))
		if len(fields) != fieldCounts[i] {
			return lines, fmt.Errorf("%w: line %d has %d fields, want %d", ErrBadReply, i+1, len(fields), fieldCounts[i])
		}
		for j, f := range fields {
			if len(f) == 0 || !allDigits(f) {
				return lines, fmt.Errorf("%w: line %d field %d is %q, want digits", ErrBadReply, i+1, j+1, f)
			}
		}
		lines[i] = fields
	}
	if len(bytes.Trim(rest, "\r\n")) > 0 {
		return lines, fmt.Errorf("%w: %d bytes after the third line", ErrBadReply, len(rest))
	}
	return lines, nil
}

func allDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != '0' {
			return false
		}
	}
	return true
}

// Probes returns the one status exchange ZPL needs.
func Probes() []status.Probe {
	return []status.Probe{{Name: "~HS", Query: HostStatus, Complete: Complete, Parse: ParseHostStatus}}
}
