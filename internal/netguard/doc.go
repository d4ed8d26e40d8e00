// Package netguard decides which addresses the server's outbound connections may reach
// (remote-backend upstreams, S3 endpoints): URLs come from model configs, which a load
// request may carry, so without a check a config could make the server fetch from the
// cloud metadata service (credentials) or probe the private network.
//
// The check runs on the address actually dialled, after DNS resolution (a net.Dialer
// Control function), so a name that resolves to a denied address, now or after a DNS
// change (rebinding), and every redirect, which dials again, are covered.
//
// Policy, in order: link-local and cloud metadata addresses (169.254.0.0/16 with
// 169.254.169.254, fe80::/10, fd00:ec2::254, 100.100.100.200) and unspecified or
// multicast addresses are always denied; then an address in Allow is accepted; then
// one in Deny is refused; then, with DenyPrivate, private ranges (10/8, 172.16/12,
// 192.168/16, 100.64/10, fc00::/7) and loopback are refused. Private and loopback are
// allowed by default, since upstreams usually run beside the server (same host, same
// cluster network) and the project's own tests run them on 127.0.0.1.
package netguard
