// Package pgtest starts a throwaway PostgreSQL cluster from Debian's
// server binaries for tests and benchmarks: initdb in a temp dir, the
// server on its own free port on 127.0.0.1 and a unix socket in the
// same dir, stopped and removed at the end. Run as root (CI), the server
// runs as the unprivileged postgres user (or nobody), since postgres
// refuses to run as root.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Cluster is a running throwaway server.
type Cluster struct {
	// URL connects as the superuser "fieldkit" to database "fieldkit".
	URL     string
	Port    int
	Dir     string
	Version string
	cmd     *exec.Cmd
	done    chan error
	logPath string
}

// BinDir finds the server binaries: $FIELDKIT_PG_BIN, else the newest
// /usr/lib/postgresql/<version>/bin holding initdb.
func BinDir() (string, error) {
	if d := os.Getenv("FIELDKIT_PG_BIN"); d != "" {
		return d, nil
	}
	ms, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(ms) == 0 {
		return "", errors.New("no PostgreSQL server: apt-get install postgresql (or set FIELDKIT_PG_BIN)")
	}
	sort.Slice(ms, func(i, j int) bool { return verOf(ms[i]) > verOf(ms[j]) })
	return filepath.Dir(ms[0]), nil
}

func verOf(initdb string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb))))
	return n
}

// Settings are extra server settings (name → value) given with -c.
type Settings map[string]string

// Start starts a cluster; Stop stops it and removes its files.
func Start(ctx context.Context, settings Settings) (*Cluster, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "fieldkit-pg-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{Dir: dir, logPath: filepath.Join(dir, "server.log")}
	ok := false
	defer func() {
		if !ok {
			c.Stop()
		}
	}()
	cred, err := credential(dir)
	if err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), "-D", data, "-U", "fieldkit", "--auth=trust",
		"-E", "UTF8", "--locale=C", "--no-sync")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	initdb.Env = append(os.Environ(), "LC_ALL=C")
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	if v, err := os.ReadFile(filepath.Join(data, "PG_VERSION")); err == nil {
		c.Version = strings.TrimSpace(string(v))
	}
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		if err := c.launch(ctx, bin, data, port, cred, settings); err == nil {
			ok = true
			return c, nil
		} else if attempt == 4 {
			return nil, err
		}
	}
	return nil, errors.New("unreachable")
}

func (c *Cluster) launch(ctx context.Context, bin, data string, port int, cred *syscall.Credential, settings Settings) error {
	args := []string{"-D", data, "-p", strconv.Itoa(port), "-k", c.Dir, "-c", "listen_addresses=127.0.0.1",
		"-c", "logging_collector=off", "-c", "max_connections=200"}
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		args = append(args, "-c", k+"="+settings[k])
	}
	logf, err := os.OpenFile(c.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(bin, "postgres"), args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("postgres: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait(); logf.Close() }()
	c.cmd, c.done, c.Port = cmd, done, port
	c.URL = fmt.Sprintf("postgres://fieldkit@127.0.0.1:%d/postgres?sslmode=disable", port)
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-done:
			c.cmd = nil
			return fmt.Errorf("postgres exited: %v\n%s", err, c.Log())
		default:
		}
		if conn, err := net.DialTimeout("unix", filepath.Join(c.Dir, fmt.Sprintf(".s.PGSQL.%d", port)), time.Second); err == nil {
			conn.Close()
			if ready(ctx, bin, c.Dir, port) {
				return nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("postgres did not get ready within 60 s\n%s", c.Log())
		}
		time.Sleep(50 * time.Millisecond) // polling the server's readiness, bounded by the deadline
	}
}

func ready(ctx context.Context, bin, sock string, port int) bool {
	if _, err := os.Stat(filepath.Join(bin, "pg_isready")); err != nil {
		return true
	}
	isready := exec.CommandContext(ctx, filepath.Join(bin, "pg_isready"), "-h", sock, "-p", strconv.Itoa(port), "-U", "fieldkit", "-d", "postgres")
	return isready.Run() == nil
}

// Log is the server's log so far.
func (c *Cluster) Log() string {
	b, _ := os.ReadFile(c.logPath)
	return string(b)
}

// Stop stops the server (fast shutdown: sessions ended, transactions
// rolled back) and removes the cluster's files.
func (c *Cluster) Stop() {
	if c.cmd != nil && c.cmd.Process != nil {
		c.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-c.done:
		case <-time.After(30 * time.Second):
			c.cmd.Process.Kill()
			<-c.done
		}
		c.cmd = nil
	}
	os.RemoveAll(c.Dir)
}

// credential picks the user the server runs as: nil (ourselves) unless
// we are root; then postgres, else nobody, owning dir.
func credential(dir string) (*syscall.Credential, error) {
	if os.Getuid() != 0 {
		return nil, nil
	}
	var u *user.User
	var err error
	for _, name := range []string{"postgres", "nobody"} {
		if u, err = user.Lookup(name); err == nil {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("running as root and no unprivileged user to run postgres as: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		return nil, err
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// New starts a cluster for a test (skipping nothing: a missing server is
// a failure) and stops it when the test ends.
func New(tb testing.TB, settings Settings) *Cluster {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := Start(ctx, settings)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Stop)
	return c
}

// DB creates a fresh database on the cluster and returns its URL.
func (c *Cluster) DB(ctx context.Context, name string) (string, error) {
	conn, err := pgx.Connect(ctx, c.URL)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	return strings.Replace(c.URL, "/postgres?", "/"+name+"?", 1), nil
}

// NewDB is DB for a test, named after it.
func (c *Cluster) NewDB(tb testing.TB) string {
	tb.Helper()
	name := strings.ToLower(strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, tb.Name()))
	if len(name) > 50 {
		name = name[:50]
	}
	url, err := c.DB(context.Background(), fmt.Sprintf("%s_%d", name, time.Now().UnixNano()%1e9))
	if err != nil {
		tb.Fatal(err)
	}
	return url
}

// CPU is the processor time the server used so far: the postmaster's,
// its exited children's (sessions that ended) and its running
// children's. The difference across a run is what the run cost the
// server, whatever else the machine was doing.
func (c *Cluster) CPU() (time.Duration, error) {
	if c.cmd == nil || c.cmd.Process == nil {
		return 0, errors.New("pgtest: server not running")
	}
	pm := c.cmd.Process.Pid
	ticks := int64(0)
	st, err := procStat(pm)
	if err != nil {
		return 0, err
	}
	ticks += st.utime + st.stime + st.cutime + st.cstime
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == pm {
			continue
		}
		if s, err := procStat(pid); err == nil && s.ppid == int64(pm) {
			ticks += s.utime + s.stime
		}
	}
	return time.Duration(ticks) * time.Second / 100, nil // USER_HZ is 100 on Linux
}

type stat struct{ ppid, utime, stime, cutime, cstime int64 }

func procStat(pid int) (stat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return stat{}, err
	}
	// Fields after the command name, which is in parentheses and may hold
	// spaces: state ppid ... utime(14) stime(15) cutime(16) cstime(17).
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 {
		return stat{}, errors.New("short /proc stat")
	}
	n := func(k int) int64 { v, _ := strconv.ParseInt(f[k-3], 10, 64); return v }
	return stat{ppid: n(4), utime: n(14), stime: n(15), cutime: n(16), cstime: n(17)}, nil
}
