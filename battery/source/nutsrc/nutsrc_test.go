package nutsrc

import (
	"bufio"
	"context"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"fieldkit/internal/clock"
)

var tStart = time.Date(2025, 6, 1, 18, 0, 0, 0, time.UTC)

func TestNUTSample(t *testing.T) {
	smp, err := Sample(tStart, map[string]string{"battery.charge": "87", "battery.runtime": "2310",
		"ups.status": "OB DISCHRG", "battery.voltage": "26.4", "ups.realpower": "120"})
	if err != nil {
		t.Fatal(err)
	}
	if smp.Percent != 87 || smp.Runtime != 2310*time.Second || smp.Status != "OB DISCHRG" || smp.Volts != 26.4 || smp.Watts != 120 {
		t.Fatalf("%+v", smp)
	}
	if _, err := Sample(tStart, map[string]string{"ups.status": "OL"}); err == nil {
		t.Fatal("no battery.charge accepted")
	}
	if _, err := Sample(tStart, map[string]string{"battery.charge": "lots"}); err == nil {
		t.Fatal("a non-numeric charge accepted")
	}
}

// TestNUTSource talks to a one-connection upsd stand-in on loopback.
func TestNUTSource(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan []string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- nil
			return
		}
		defer c.Close()
		var got []string
		sc := bufio.NewScanner(c)
		for sc.Scan() {
			got = append(got, sc.Text())
			switch sc.Text() {
			case "USERNAME mon", "PASSWORD pw":
				c.Write([]byte("OK\n"))
			case "LIST VAR rack":
				c.Write([]byte("BEGIN LIST VAR rack\nVAR rack battery.charge \"55\"\nVAR rack battery.runtime \"600\"\nVAR rack ups.status \"OB\"\nEND LIST VAR rack\n"))
			case "LOGOUT":
				c.Write([]byte("OK Goodbye\n"))
				done <- got
				return
			}
		}
		done <- got
	}()
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	var p int
	for _, ch := range port {
		p = p*10 + int(ch-'0')
	}
	pwFile := t.TempDir() + "/pw"
	if err := writeFile(pwFile, "pw\n"); err != nil {
		t.Fatal(err)
	}
	s := &Source{Config: Config{Host: host, Port: p, UPS: "rack", Username: "mon", PasswordFile: pwFile}, Clock: clock.NewFake(tStart)}
	smp, err := s.Poll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if smp.Percent != 55 || smp.Runtime != 10*time.Minute || smp.Status != "OB" {
		t.Fatalf("%+v", smp)
	}
	s.Close()
	select {
	case got := <-done:
		want := "USERNAME mon|PASSWORD pw|LIST VAR rack|LOGOUT"
		if strings.Join(got, "|") != want {
			t.Fatalf("server got %q", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("server never saw LOGOUT")
	}
}

func writeFile(path, s string) error { return os.WriteFile(path, []byte(s), 0o600) }
