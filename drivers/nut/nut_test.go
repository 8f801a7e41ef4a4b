package nut

import (
	"bufio"
	"context"
	"errors"
	"net"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeUPSD answers the subset of the upsd protocol the client speaks, from
// a table of UPSes, and records every line it received.
type fakeUPSD struct {
	ln       net.Listener
	ups      map[string][][2]string // ordered variables per UPS
	user     string
	pass     string
	mu       sync.Mutex
	got      []string
	override map[string]string // raw reply for a request line
	wg       sync.WaitGroup
}

func startFake(t *testing.T, ups map[string][][2]string, login ...string) *fakeUPSD {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeUPSD{ln: ln, ups: ups, override: map[string]string{}}
	if len(login) == 2 {
		f.user, f.pass = login[0], login[1]
	}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.wg.Add(1)
			go func() {
				defer f.wg.Done()
				f.serve(c)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); f.wg.Wait() })
	return f
}

func (f *fakeUPSD) addr() string { return f.ln.Addr().String() }

func (f *fakeUPSD) lines() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.got...)
}

func (f *fakeUPSD) serve(c net.Conn) {
	defer c.Close()
	sc := bufio.NewScanner(c)
	w := bufio.NewWriter(c)
	var user string
	authed := f.user == ""
	for sc.Scan() {
		line := sc.Text()
		f.mu.Lock()
		f.got = append(f.got, line)
		raw, ok := f.override[line]
		f.mu.Unlock()
		if ok {
			w.WriteString(raw)
			w.Flush()
			continue
		}
		words, err := ParseLine(line)
		if err != nil || len(words) == 0 {
			w.WriteString("ERR UNKNOWN-COMMAND\n")
			w.Flush()
			continue
		}
		switch {
		case words[0] == "USERNAME" && len(words) == 2:
			user = words[1]
			w.WriteString("OK\n")
		case words[0] == "PASSWORD" && len(words) == 2:
			if user == f.user && words[1] == f.pass {
				authed = true
				w.WriteString("OK\n")
			} else {
				w.WriteString("ERR ACCESS-DENIED\n")
			}
		case words[0] == "LOGOUT":
			w.WriteString("OK Goodbye\n")
			w.Flush()
			return
		case !authed:
			w.WriteString("ERR ACCESS-DENIED\n")
		case len(words) == 3 && words[0] == "LIST" && words[1] == "VAR":
			vars, ok := f.ups[words[2]]
			if !ok {
				w.WriteString("ERR UNKNOWN-UPS\n")
				break
			}
			w.WriteString("BEGIN LIST VAR " + words[2] + "\n")
			for _, v := range vars {
				w.WriteString("VAR " + words[2] + " " + v[0] + " " + quote2(v[1]) + "\n")
			}
			w.WriteString("END LIST VAR " + words[2] + "\n")
		case len(words) == 4 && words[0] == "GET" && words[1] == "VAR":
			vars, ok := f.ups[words[2]]
			if !ok {
				w.WriteString("ERR UNKNOWN-UPS\n")
				break
			}
			found := false
			for _, v := range vars {
				if v[0] == words[3] {
					w.WriteString("VAR " + words[2] + " " + v[0] + " " + quote2(v[1]) + "\n")
					found = true
				}
			}
			if !found {
				w.WriteString("ERR VAR-NOT-SUPPORTED\n")
			}
		default:
			w.WriteString("ERR UNKNOWN-COMMAND\n")
		}
		w.Flush()
	}
}

// quote2 always quotes, as upsd does for values.
func quote2(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

var ups1 = map[string][][2]string{
	"rack": {
		{"battery.charge", "87"},
		{"battery.runtime", "2310"},
		{"ups.status", "OB DISCHRG"},
		{"ups.mfr", `Eaton "5S"`},
		{"device.path", `C:\ups`},
	},
}

func TestVarsAndGet(t *testing.T) {
	f := startFake(t, ups1)
	ctx := context.Background()
	c, err := Dial(ctx, f.addr(), Opts{})
	if err != nil {
		t.Fatal(err)
	}
	vars, err := c.Vars(ctx, "rack")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"battery.charge": "87", "battery.runtime": "2310", "ups.status": "OB DISCHRG",
		"ups.mfr": `Eaton "5S"`, "device.path": `C:\ups`}
	if !reflect.DeepEqual(vars, want) {
		t.Fatalf("vars %v\nwant %v", vars, want)
	}
	if v, err := c.Get(ctx, "rack", "ups.status"); err != nil || v != "OB DISCHRG" {
		t.Fatalf("Get = %q, %v", v, err)
	}
	_, err = c.Get(ctx, "rack", "battery.voltage")
	var se *ServerError
	if !errors.As(err, &se) || se.Code != "VAR-NOT-SUPPORTED" || !errors.Is(err, ErrServer) {
		t.Fatalf("missing var: %v", err)
	}
	if _, err := c.Vars(ctx, "nope"); !errors.As(err, &se) || se.Code != "UNKNOWN-UPS" {
		t.Fatalf("unknown UPS: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	waitLines(t, f, []string{"LIST VAR rack", "GET VAR rack ups.status", "GET VAR rack battery.voltage", "LIST VAR nope", "LOGOUT"})
}

func waitLines(t *testing.T, f *fakeUPSD, want []string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := f.lines()
		if reflect.DeepEqual(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("server got %q\nwant %q", got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestLogin(t *testing.T) {
	f := startFake(t, ups1, "monitor", `se cret"`)
	ctx := context.Background()
	c, err := Dial(ctx, f.addr(), Opts{Username: "monitor", Password: `se cret"`})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Vars(ctx, "rack"); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if got := f.lines()[:2]; got[0] != "USERNAME monitor" || got[1] != `PASSWORD "se cret\""` {
		t.Fatalf("login lines %q", got)
	}
	_, err = Dial(ctx, f.addr(), Opts{Username: "monitor", Password: "wrong"})
	var se *ServerError
	if !errors.As(err, &se) || se.Code != "ACCESS-DENIED" {
		t.Fatalf("bad password: %v", err)
	}
	if _, err := Dial(ctx, f.addr(), Opts{Username: "monitor", Password: "a\nLIST VAR rack"}); err == nil {
		t.Fatal("a password with a newline was sent")
	}
}

func TestBadServer(t *testing.T) {
	cases := map[string]string{
		"garbage":        "HELLO\n",
		"wrong ups":      "BEGIN LIST VAR other\nEND LIST VAR other\n",
		"bad line":       "BEGIN LIST VAR rack\nVAR rack x \"unterminated\n",
		"closes":         "",
		"huge line":      "BEGIN LIST VAR rack\nVAR rack x \"" + strings.Repeat("a", 5000) + "\"\n",
		"err with extra": "ERR DATA-STALE now\n",
	}
	for name, reply := range cases {
		t.Run(name, func(t *testing.T) {
			f := startFake(t, ups1)
			f.mu.Lock()
			f.override["LIST VAR rack"] = reply
			f.mu.Unlock()
			ctx := context.Background()
			c, err := Dial(ctx, f.addr(), Opts{Timeout: 500 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if vars, err := c.Vars(ctx, "rack"); err == nil {
				t.Fatalf("accepted %q as %v", reply, vars)
			}
		})
	}
}

func TestDialRefused(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	if _, err := Dial(context.Background(), addr, Opts{Timeout: time.Second}); err == nil {
		t.Fatal("dial to a closed port succeeded")
	}
}

func TestParseLine(t *testing.T) {
	cases := []struct {
		in   string
		want []string
		bad  bool
	}{
		{in: `VAR ups battery.charge "100"`, want: []string{"VAR", "ups", "battery.charge", "100"}},
		{in: `VAR ups ups.mfr "A \"B\" \\C"`, want: []string{"VAR", "ups", "ups.mfr", `A "B" \C`}},
		{in: `VAR ups x ""`, want: []string{"VAR", "ups", "x", ""}},
		{in: "OK  Goodbye\r", want: []string{"OK", "Goodbye"}},
		{in: "", want: nil},
		{in: `VAR ups x "open`, bad: true},
		{in: `VAR ups x "a\`, bad: true},
		{in: `VAR ups x"a"`, bad: true},
		{in: `VAR ups x "a"b`, bad: true},
		{in: "VAR \x01", bad: true},
	}
	for _, c := range cases {
		got, err := ParseLine(c.in)
		if c.bad {
			if err == nil {
				t.Errorf("ParseLine(%q) = %q, want an error", c.in, got)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("ParseLine(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

// FuzzParseLine: never panics, and whatever parses survives a round trip
// through the client's quoting.
func FuzzParseLine(f *testing.F) {
	for _, s := range []string{`VAR ups battery.charge "100"`, `VAR u m "A \"B\" \\C"`, "BEGIN LIST VAR rack", `ERR ACCESS-DENIED`, `"`, `a "b\`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		words, err := ParseLine(line)
		if err != nil {
			return
		}
		quoted := make([]string, len(words))
		for i, w := range words {
			quoted[i] = quote2(w)
		}
		again, err := ParseLine(strings.Join(quoted, " "))
		if err != nil {
			t.Fatalf("re-parse of %q: %v", words, err)
		}
		if len(again) != len(words) {
			t.Fatalf("round trip %q → %q", words, again)
		}
		for i := range words {
			if again[i] != words[i] {
				t.Fatalf("round trip %q → %q", words, again)
			}
		}
	})
}
