package fake

import (
	"fmt"
	"os"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// ptyPort is the printer's end of a pseudo-terminal.
type ptyPort struct {
	master *os.File
	slave  *os.File // kept open so that the line stays configured
	path   string
	stop   chan struct{}
	done   chan struct{}
}

// OpenPTY opens a pseudo-terminal and serves it; the host opens the
// returned slave path like a serial port (or Opts.Link, when set).
func (p *Printer) OpenPTY() (string, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return "", ErrClosed
	}
	if p.wantPTY {
		p.mu.Unlock()
		return "", ErrTransport
	}
	p.wantPTY = true
	plugged := p.plugged
	p.mu.Unlock()
	if !plugged {
		return "", nil
	}
	return p.openPTY()
}

// PTYPath is the current slave path, "" while unplugged.
func (p *Printer) PTYPath() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pty == nil {
		return ""
	}
	return p.pty.path
}

// Link is Opts.Link: the stable name of the pseudo-terminal.
func (p *Printer) Link() string { return p.opts.Link }

func (p *Printer) openPTY() (string, error) {
	master, slave, err := newPTY()
	if err != nil {
		return "", err
	}
	// A device that comes back appears under a new name: never reuse
	// the last path, even when the kernel would.
	p.mu.Lock()
	last := p.lastPath
	p.mu.Unlock()
	if slave.Name() == last {
		m2, s2, err := newPTY()
		master.Close()
		slave.Close()
		if err != nil {
			return "", err
		}
		master, slave = m2, s2
	}
	pt := &ptyPort{master: master, slave: slave, path: slave.Name(), stop: make(chan struct{}), done: make(chan struct{})}
	if l := p.opts.Link; l != "" {
		tmp := l + ".new"
		_ = os.Remove(tmp)
		// A link that cannot be made or moved into place is an error: the
		// host would open a stale or missing path.
		lerr := os.Symlink(pt.path, tmp)
		if lerr == nil {
			lerr = os.Rename(tmp, l)
		}
		if lerr != nil {
			_ = os.Remove(tmp)
			master.Close()
			slave.Close()
			return "", fmt.Errorf("fake printer: link %s: %w", l, lerr)
		}
	}
	p.mu.Lock()
	if p.closed || !p.plugged {
		p.mu.Unlock()
		pt.close(p.opts.Link)
		return "", ErrClosed
	}
	p.pty, p.lastPath = pt, pt.path
	p.wg.Add(1)
	p.mu.Unlock()
	go func() {
		defer p.wg.Done()
		defer close(pt.done)
		p.serve(pt.master, pt.stop)
	}()
	return pt.path, nil
}

// newPTY opens a pseudo-terminal in raw mode with a pollable master, so
// that closing it interrupts a pending read.
func newPTY() (master, slave *os.File, err error) {
	m, s, err := pty.Open()
	if err != nil {
		return nil, nil, fmt.Errorf("fake printer: open pty: %w", err)
	}
	fd, err := unix.FcntlInt(m.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	m.Close()
	if err == nil {
		err = unix.SetNonblock(fd, true)
	}
	if err == nil {
		err = makeRaw(int(s.Fd()))
	}
	if err != nil {
		s.Close()
		if fd >= 0 {
			unix.Close(fd)
		}
		return nil, nil, fmt.Errorf("fake printer: set up pty: %w", err)
	}
	return os.NewFile(uintptr(fd), "/dev/ptmx"), s, nil
}

// makeRaw turns off line editing, echo and output processing, so that
// bytes pass unchanged in both directions, as on a serial line.
func makeRaw(fd int) error {
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return err
	}
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON | unix.IXOFF
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8 | unix.CREAD | unix.CLOCAL
	t.Cc[unix.VMIN] = 1
	t.Cc[unix.VTIME] = 0
	return unix.IoctlSetTermios(fd, unix.TCSETS, t)
}

func (pt *ptyPort) close(link string) error {
	close(pt.stop)
	err := pt.master.Close()
	pt.slave.Close()
	<-pt.done
	if link != "" {
		if target, lerr := os.Readlink(link); lerr == nil && target == pt.path {
			os.Remove(link)
		}
	}
	return err
}
