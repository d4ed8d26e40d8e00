package netguard

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestCheck(t *testing.T) {
	allow, err := ParsePrefixes([]string{"10.1.0.0/16", "169.254.1.1"})
	if err != nil {
		t.Fatal(err)
	}
	deny, _ := ParsePrefixes([]string{"203.0.113.0/24"})
	open := &Policy{}
	strict := &Policy{DenyPrivate: true, Allow: allow, Deny: deny}
	for _, c := range []struct {
		addr         string
		open, strict bool // accepted?
	}{
		{"169.254.169.254", false, false},
		{"::ffff:169.254.169.254", false, false},
		{"169.254.1.1", false, false}, // Allow does not open link-local
		{"fd00:ec2::254", false, false},
		{"fe80::1", false, false},
		{"100.100.100.200", false, false},
		{"0.0.0.0", false, false},
		{"127.0.0.1", true, false},
		{"::1", true, false},
		{"10.9.9.9", true, false},
		{"10.1.2.3", true, true}, // allowed explicitly
		{"172.16.0.1", true, false},
		{"192.168.1.1", true, false},
		{"fc00::1", true, false},
		{"203.0.113.5", true, false}, // denied explicitly
		{"8.8.8.8", true, true},
		{"2001:4860:4860::8888", true, true},
	} {
		a := netip.MustParseAddr(c.addr)
		if got := open.Check(a) == nil; got != c.open {
			t.Errorf("default policy, %s: accepted=%t, want %t", c.addr, got, c.open)
		}
		if got := strict.Check(a) == nil; got != c.strict {
			t.Errorf("strict policy, %s: accepted=%t, want %t", c.addr, got, c.strict)
		}
	}
	if _, err := ParsePrefixes([]string{"10.0.0.0/33"}); err == nil {
		t.Error("10.0.0.0/33 parsed")
	}
	if _, err := ParsePrefixes([]string{"example.com"}); err == nil {
		t.Error("a name parsed as an address")
	}
}

// TestDialChecksTheResolvedAddress: the check runs on the address a name resolves to,
// so "localhost" is refused as 127.0.0.1 when private addresses are.
func TestDialChecksTheResolvedAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
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
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p := &Policy{DenyPrivate: true}
	_, err = p.DialContext(ctx, "tcp", net.JoinHostPort("localhost", port))
	var denied *DeniedError
	if !errors.As(err, &denied) || !denied.Addr.IsLoopback() {
		t.Fatalf("dial localhost with private denied: %v, want a DeniedError for a loopback address", err)
	}
	c, err := (&Policy{}).DialContext(ctx, "tcp", net.JoinHostPort("localhost", port))
	if err != nil {
		t.Fatalf("dial localhost by default: %v", err)
	}
	c.Close()
}

// TestRedirectsAreChecked: an upstream answering with a redirect to the metadata service
// (or, with private denied, to a private address) does not get it dialled.
func TestRedirectsAreChecked(t *testing.T) {
	target := ""
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target, http.StatusFound)
	}))
	defer srv.Close()
	allowTest, _ := ParsePrefixes([]string{"127.0.0.1"})
	p := &Policy{DenyPrivate: true, Allow: allowTest}
	hc := &http.Client{Transport: &http.Transport{DialContext: p.DialContext}, CheckRedirect: p.CheckRedirect, Timeout: 5 * time.Second}
	for _, target = range []string{"http://169.254.169.254/latest/meta-data/", "http://[fd00:ec2::254]/", "http://10.0.0.1/", "http://localhost:1/"} {
		start := time.Now()
		resp, err := hc.Get(srv.URL)
		if err == nil {
			resp.Body.Close()
			t.Errorf("redirect to %s followed: %s", target, resp.Status)
			continue
		}
		if !strings.Contains(err.Error(), "refused") {
			t.Errorf("redirect to %s: %v, want a refusal", target, err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("redirect to %s refused after %s: it was dialled", target, d)
		}
	}
}
