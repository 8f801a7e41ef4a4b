package mqttc

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"net/url"
	"runtime"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// openConn reaches a plain and a TLS listener (verifying the server's
// name against the URL's host), and wraps the TCP connection so that it
// acknowledges what it reads at once (on Linux).
func TestOpenConn(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "broker"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	serverTLS := &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}

	for _, scheme := range []string{"tcp", "ssl"} {
		t.Run(scheme, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			if scheme == "ssl" {
				ln = tls.NewListener(ln, serverTLS)
			}
			go func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				_, _ = c.Write([]byte("hello"))
				_, _ = io.Copy(io.Discard, c)
			}()
			o := paho.NewClientOptions().SetConnectTimeout(5 * time.Second).SetTLSConfig(&tls.Config{RootCAs: pool})
			u, _ := url.Parse(scheme + "://" + ln.Addr().String())
			c, err := openConn(u, *o)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			buf := make([]byte, 5)
			if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "hello" {
				t.Fatalf("read %q %v", buf, err)
			}
			inner := c
			switch cc := c.(type) {
			case *tls.Conn:
				inner = cc.NetConn()
			case bufferedConn:
				inner = cc.Conn
			}
			if _, ok := inner.(*quickAckConn); !ok && runtime.GOOS == "linux" {
				t.Fatalf("connection %T does not acknowledge what it reads", inner)
			}
		})
	}
	if _, err := openConn(&url.URL{Scheme: "ws", Host: "127.0.0.1:1"}, *paho.NewClientOptions()); err == nil {
		t.Fatal("ws:// accepted")
	}
}
