package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"time"
)

// Policy says which addresses may be dialled. The zero Policy denies only the
// always-denied addresses. Safe for concurrent use once built.
type Policy struct {
	DenyPrivate bool           // refuse private ranges and loopback too
	Allow       []netip.Prefix // accepted even when DenyPrivate or Deny would refuse them
	Deny        []netip.Prefix // refused unless in Allow
}

// alwaysDenied are never dialled: link-local (the cloud metadata services live there),
// the metadata addresses of clouds that put them elsewhere, unspecified and multicast.
var alwaysDenied = prefixes("169.254.0.0/16", "fe80::/10", "fd00:ec2::254/128", "100.100.100.200/32",
	"0.0.0.0/8", "::/128", "224.0.0.0/4", "ff00::/8")

var private = prefixes("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7",
	"127.0.0.0/8", "::1/128")

func prefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

// ParsePrefixes reads a list of CIDRs or single addresses ("10.1.2.3" is 10.1.2.3/32).
func ParsePrefixes(ss []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range ss {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !strings.Contains(s, "/") {
			a, err := netip.ParseAddr(s)
			if err != nil {
				return nil, fmt.Errorf("%q: want an address or a CIDR such as 10.0.0.0/8", s)
			}
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("%q: want an address or a CIDR such as 10.0.0.0/8", s)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// DeniedError is a refused address.
type DeniedError struct {
	Addr   netip.Addr
	Reason string
}

func (e *DeniedError) Error() string {
	return fmt.Sprintf("outbound connection to %s refused: %s", e.Addr, e.Reason)
}

// Check accepts or refuses one address.
func (p *Policy) Check(a netip.Addr) error {
	a = a.Unmap() // ::ffff:169.254.169.254 is 169.254.169.254
	if a.Zone() != "" {
		a = a.WithZone("")
	}
	switch {
	case !a.IsValid():
		return &DeniedError{Addr: a, Reason: "not an address"}
	case in(alwaysDenied, a):
		return &DeniedError{Addr: a, Reason: "link-local, cloud metadata, unspecified and multicast addresses are never dialled"}
	case p == nil || in(p.Allow, a):
		return nil
	case in(p.Deny, a):
		return &DeniedError{Addr: a, Reason: "in the denied ranges (--upstream-deny)"}
	case p.DenyPrivate && in(private, a):
		return &DeniedError{Addr: a, Reason: "private and loopback addresses are denied (--deny-private-upstreams; --upstream-allow to accept one)"}
	}
	return nil
}

func in(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Control is a net.Dialer Control function: it runs after DNS resolution, on the
// address about to be connected, and refuses it by the policy.
func (p *Policy) Control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("outbound connection to %q refused: not an IP address and port", address)
	}
	return p.Check(ap.Addr())
}

// Dialer is a net.Dialer that checks every address it connects to.
func (p *Policy) Dialer(timeout time.Duration) *net.Dialer {
	return &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second, Control: p.Control}
}

// DialContext dials with the policy, for grpc.WithContextDialer and http.Transport.
func (p *Policy) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return p.Dialer(0).DialContext(ctx, network, addr)
}

// CheckRedirect is an http.Client CheckRedirect: at most 10 redirects, and none to a
// literal address the policy refuses (names are checked when dialled, by Control).
func (p *Policy) CheckRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	if a, err := netip.ParseAddr(strings.Trim(req.URL.Hostname(), "[]")); err == nil {
		if err := p.Check(a); err != nil {
			return fmt.Errorf("redirect to %s: %w", req.URL.Redacted(), err)
		}
	}
	return nil
}
