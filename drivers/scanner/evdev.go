package scanner

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// EventSize is the size of struct input_event on this platform: a
// struct timeval (two longs) and type, code and value. 24 bytes on
// 64-bit Linux, 16 on 32-bit ARM (a Pi running a 32-bit OS).
const EventSize = 2*bits.UintSize/8 + 8

// Event is one struct input_event, without its time.
type Event struct {
	Type  uint16
	Code  uint16
	Value int32
}

// ParseEvent decodes one struct input_event of EventSize bytes. Every
// board fieldkit runs on is little-endian.
func ParseEvent(b []byte) (Event, error) {
	if len(b) != EventSize {
		return Event{}, fmt.Errorf("input event of %d bytes; expected %d", len(b), EventSize)
	}
	t := b[EventSize-8:]
	return Event{
		Type:  binary.LittleEndian.Uint16(t[0:]),
		Code:  binary.LittleEndian.Uint16(t[2:]),
		Value: int32(binary.LittleEndian.Uint32(t[4:])),
	}, nil
}

// ReadKeys reads input events from r and calls emit with every code a
// scanner ends with Enter, until r ends (io.EOF is returned) or fails.
func ReadKeys(r io.Reader, d *Decoder, emit func(string)) error {
	buf := make([]byte, EventSize*64)
	var n int
	for {
		m, err := r.Read(buf[n:])
		n += m
		k := 0
		for ; k+EventSize <= n; k += EventSize {
			ev, _ := ParseEvent(buf[k : k+EventSize])
			if ev.Type != evKey {
				continue // EV_SYN, EV_MSC (the HID usage), EV_LED
			}
			if code, ok := d.Key(ev.Code, ev.Value); ok {
				emit(code)
			}
		}
		n = copy(buf, buf[k:n])
		if err != nil {
			return err
		}
	}
}

// evioCGrab is EVIOCGRAB, _IOW('E', 0x90, int): while held, the device's
// events go to this descriptor only, not to the console or a desktop.
const evioCGrab = 0x40044590

// ErrNotInput is returned for a path that is not an input event device.
var ErrNotInput = errors.New("not an input event device (expected /dev/input/eventN or a /dev/input/by-id/...-event-kbd link)")

// Keyboard is a scanner in keyboard (HID) mode, read from its input
// device with an exclusive grab.
type Keyboard struct {
	path string
	f    *os.File
	dec  Decoder
}

// OpenKeyboard opens the input device at path and grabs it. A device
// another program has grabbed is refused with EBUSY.
func OpenKeyboard(path string) (*Keyboard, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("scanner %s: %w", path, err)
	}
	// A regular file or a pipe is refused before the grab: what an ioctl
	// the file does not know returns differs between kernels and
	// emulators (ENOTTY, EINVAL, ENOSYS under qemu-user).
	if st, err := f.Stat(); err != nil || st.Mode()&os.ModeCharDevice == 0 {
		f.Close()
		return nil, fmt.Errorf("scanner %s: %w", path, ErrNotInput)
	}
	if err := unix.IoctlSetInt(int(f.Fd()), evioCGrab, 1); err != nil {
		f.Close()
		if errors.Is(err, unix.ENOTTY) || errors.Is(err, unix.EINVAL) {
			return nil, fmt.Errorf("scanner %s: %w", path, ErrNotInput)
		}
		if errors.Is(err, unix.EBUSY) {
			return nil, fmt.Errorf("scanner %s: another program holds the device (EVIOCGRAB: %w)", path, err)
		}
		return nil, fmt.Errorf("scanner %s: exclusive grab: %w", path, err)
	}
	return &Keyboard{path: path, f: f}, nil
}

// Run reads codes until ctx ends or the device goes away (unplugged),
// calling emit with each.
func (k *Keyboard) Run(ctx context.Context, emit func(string)) error {
	stop := context.AfterFunc(ctx, func() { k.f.Close() })
	defer stop()
	err := ReadKeys(k.f, &k.dec, emit)
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("scanner %s: %w", k.path, err)
}

// Dropped counts codes thrown away (too long).
func (k *Keyboard) Dropped() int { return k.dec.Dropped }

// Close releases the grab and the device.
func (k *Keyboard) Close() error {
	err := k.f.Close()
	if errors.Is(err, os.ErrClosed) {
		return nil
	}
	return err
}
