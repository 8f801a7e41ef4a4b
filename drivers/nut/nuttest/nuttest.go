// Package nuttest runs a real NUT server for tests: upsd with the
// dummy-ups driver (Debian's nut-server), configured in a temporary
// directory and listening on a free loopback port. The test changes what
// the "UPS" reports by rewriting the driver's .dev file.
package nuttest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"fieldkit/drivers/nut"
)

// Var is one variable of the simulated UPS, in .dev file order.
type Var struct{ Name, Value string }

// Server is an upsd and a dummy-ups owned by a test.
type Server struct {
	Addr string // 127.0.0.1:port
	UPS  string // the UPS's name in upsd

	t     testing.TB
	dir   string
	dev   string
	mu    sync.Mutex
	gen   int
	procs []*proc
}

// proc is one child process; its waiter goroutine closes done.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  *syncBuffer
	done chan struct{}
}

// syncBuffer is written by the child's output copier and read by Log.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Binaries returns the directory holding upsd and dummy-ups, or skips
// the test saying how to get them (scripts/test.sh installs nut-server).
func Binaries(t testing.TB) string {
	t.Helper()
	dirs := []string{"/lib/nut", "/usr/lib/nut", "/usr/libexec/nut", "/usr/local/ups/bin"}
	if d := os.Getenv("FIELDKIT_NUT_DIR"); d != "" {
		dirs = []string{d}
	}
	for _, d := range dirs {
		if isExec(filepath.Join(d, "upsd")) && isExec(filepath.Join(d, "dummy-ups")) {
			return d
		}
	}
	t.Skipf("upsd and dummy-ups not found in %s: install Debian's nut-server (scripts/test.sh does) or set FIELDKIT_NUT_DIR", strings.Join(dirs, ", "))
	return ""
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// Start runs upsd and dummy-ups with a UPS named ups reporting vars, and
// returns once upsd serves them. Both stop when the test ends.
func Start(t testing.TB, ups string, vars []Var) *Server {
	t.Helper()
	bin := Binaries(t)
	var lastErr error
	// The free port is only free when we looked; another process may take
	// it before upsd binds, so try a few.
	for attempt := 0; attempt < 3; attempt++ {
		s := &Server{t: t, UPS: ups, dir: t.TempDir()}
		if lastErr = s.start(bin, vars); lastErr == nil {
			t.Cleanup(s.stop)
			return s
		}
		s.stop()
	}
	t.Fatalf("nuttest: %v", lastErr)
	return nil
}

func (s *Server) start(bin string, vars []Var) error {
	conf := filepath.Join(s.dir, "etc")
	state := filepath.Join(s.dir, "run")
	for _, d := range []string{conf, state} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return err
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	s.Addr = ln.Addr().String()
	ln.Close()
	host, port, _ := net.SplitHostPort(s.Addr)
	s.dev = filepath.Join(conf, s.UPS+".dev")
	files := map[string]string{
		// mode dummy-once: the driver reads the file again whenever its
		// modification time changes, checked every pollinterval.
		"ups.conf":   fmt.Sprintf("[%s]\n\tdriver = dummy-ups\n\tport = %s\n\tmode = dummy-once\n\tpollinterval = 1\n\tdesc = \"fieldkit test UPS\"\n", s.UPS, s.dev),
		"upsd.conf":  fmt.Sprintf("LISTEN %s %s\nMAXAGE 15\n", host, port),
		"upsd.users": "[monitor]\n\tpassword = fieldkit-test\n\tupsmon secondary\n",
		"nut.conf":   "MODE=standalone\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(conf, name), []byte(body), 0o600); err != nil {
			return err
		}
	}
	if err := s.writeDev(vars); err != nil {
		return err
	}
	env := append(os.Environ(), "NUT_CONFPATH="+conf, "NUT_STATEPATH="+state, "NUT_ALTPIDPATH="+state)
	// As root both programs drop to the "nut" user unless told otherwise,
	// and that user could not read a test's temporary directory.
	var asUser []string
	if os.Geteuid() == 0 {
		asUser = []string{"-u", "root"}
	} else if u, err := user.Current(); err == nil {
		asUser = []string{"-u", u.Username}
	}
	if err := s.run(env, filepath.Join(bin, "dummy-ups"), append([]string{"-F", "-a", s.UPS}, asUser...)...); err != nil {
		return err
	}
	// upsd finds the driver by its socket in the state directory.
	sock := filepath.Join(state, "dummy-ups-"+s.UPS)
	if err := s.waitFor("dummy-ups's socket "+sock, func() error { _, err := os.Stat(sock); return err }); err != nil {
		return err
	}
	if err := s.run(env, filepath.Join(bin, "upsd"), append([]string{"-F"}, asUser...)...); err != nil {
		return err
	}
	return s.waitVars(vars)
}

func (s *Server) run(env []string, path string, args ...string) error {
	cmd := exec.Command(path, args...)
	cmd.Env = env
	cmd.Dir = s.dir
	p := &proc{name: filepath.Base(path), cmd: cmd, log: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.log, p.log
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", path, err)
	}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	s.mu.Lock()
	s.procs = append(s.procs, p)
	s.mu.Unlock()
	return nil
}

func (s *Server) stop() {
	s.mu.Lock()
	procs := s.procs
	s.procs = nil
	s.mu.Unlock()
	// upsd first, then its driver.
	for i := len(procs) - 1; i >= 0; i-- {
		p := procs[i]
		_ = p.cmd.Process.Signal(os.Interrupt)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
}

// Log is what upsd and dummy-ups printed, for failure messages.
func (s *Server) Log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	for _, p := range s.procs {
		fmt.Fprintf(&b, "--- %s:\n%s\n", p.name, p.log.String())
	}
	return b.String()
}

// writeDev rewrites the .dev file and moves its modification time
// forward by a whole second each time, so that the driver, which
// compares times, sees every change even within one second.
func (s *Server) writeDev(vars []Var) error {
	var b strings.Builder
	for _, v := range vars {
		fmt.Fprintf(&b, "%s: %s\n", v.Name, v.Value)
	}
	tmp := s.dev + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		return err
	}
	s.gen++
	mt := time.Unix(1_700_000_000+int64(s.gen), 0)
	if err := os.Chtimes(tmp, mt, mt); err != nil {
		return err
	}
	return os.Rename(tmp, s.dev)
}

// Set makes the UPS report vars (every variable the test cares about)
// and returns once upsd serves them.
func (s *Server) Set(vars ...Var) {
	s.t.Helper()
	if err := s.writeDev(vars); err != nil {
		s.t.Fatal(err)
	}
	if err := s.waitVars(vars); err != nil {
		s.t.Fatalf("nuttest: %v\n%s", err, s.Log())
	}
}

func (s *Server) waitVars(vars []Var) error {
	return s.waitFor("upsd to serve "+fmt.Sprint(vars), func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		c, err := nut.Dial(ctx, s.Addr, nut.Opts{Timeout: 2 * time.Second})
		if err != nil {
			return err
		}
		defer c.Close()
		got, err := c.Vars(ctx, s.UPS)
		if err != nil {
			return err
		}
		for _, v := range vars {
			if got[v.Name] != v.Value {
				return fmt.Errorf("%s is %q, not yet %q", v.Name, got[v.Name], v.Value)
			}
		}
		return nil
	})
}

// waitFor polls cond until it holds, a process exits, or 15 s pass.
func (s *Server) waitFor(what string, cond func() error) error {
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		s.mu.Lock()
		for _, p := range s.procs {
			select {
			case <-p.done:
				err = errors.Join(err, fmt.Errorf("%s exited", p.name))
				deadline = time.Time{}
			default:
			}
		}
		s.mu.Unlock()
		if time.Now().After(deadline) {
			return fmt.Errorf("waiting for %s: %w\n%s", what, err, s.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
