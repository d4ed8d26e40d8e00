package auth

import (
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferryml/ferry/internal/auth/authtest"
)

// handshake connects to addr and returns the serial of the server's certificate and
// the error of the handshake.
func handshake(addr string, cfg *tls.Config) (string, error) {
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		return "", err
	}
	defer c.Close()
	// TLS 1.3 reports a refused client certificate on the first read.
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	var b [1]byte
	if _, err := c.Read(b[:]); err != nil && !isTimeout(err) {
		return "", err
	}
	return c.ConnectionState().PeerCertificates[0].SerialNumber.String(), nil
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// TestServerTLSReloadsAndVerifiesClients rewrites the certificate files under a
// listening server and checks that new handshakes get the new certificate, and that
// a client certificate is required when asked for.
func TestServerTLSReloadsAndVerifiesClients(t *testing.T) {
	ca := authtest.NewCA(t)
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "s.pem"), filepath.Join(dir, "s.key")
	first := ca.Issue(t, cert, key, "server", true)
	cfg, rl, err := ServerTLS(TLSFiles{Cert: cert, Key: key, ClientCA: ca.CertFile, RequireClientCert: true})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { c.(*tls.Conn).Handshake(); time.Sleep(300 * time.Millisecond); c.Close() }()
		}
	}()
	addr := ln.Addr().String()
	cc, ck := filepath.Join(dir, "c.pem"), filepath.Join(dir, "c.key")
	ca.Issue(t, cc, ck, "acme", false)
	clientCert, err := tls.LoadX509KeyPair(cc, ck)
	if err != nil {
		t.Fatal(err)
	}
	client := &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", Certificates: []tls.Certificate{clientCert}}
	if got, err := handshake(addr, client); err != nil || got != first.String() {
		t.Fatalf("first handshake: serial %s, %v; want %s", got, err, first)
	}
	if _, err := handshake(addr, &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"}); err == nil {
		t.Fatal("a client without a certificate was accepted with RequireClientCert")
	}
	second := ca.Issue(t, cert, key, "server", true)
	future := time.Now().Add(2 * time.Second) // a different mtime even on coarse clocks
	os.Chtimes(cert, future, future)
	os.Chtimes(key, future, future)
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, err := handshake(addr, client)
		if err == nil && got == second.String() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after rewriting the files: serial %s, %v; want %s", got, err, second)
		}
		time.Sleep(100 * time.Millisecond)
	}
	os.WriteFile(cert, []byte("garbage"), 0o600)
	os.Chtimes(cert, future.Add(time.Second), future.Add(time.Second))
	time.Sleep(1100 * time.Millisecond)
	if got, err := handshake(addr, client); err != nil || got != second.String() {
		t.Fatalf("after a bad rewrite: serial %s, %v; want the previous %s kept", got, err, second)
	}
	if rl.Err() == nil {
		t.Fatal("a bad rewrite reported no error")
	}
}
