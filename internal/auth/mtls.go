package auth

import (
	"crypto/x509"
	"encoding/json"
	"fmt"
	"os"
)

// CertMapping maps verified client certificates to identities. A certificate is
// looked up by its subject CN, then by each DNS and email SAN, in Names; without an
// entry, the CN is the tenant and the role is the first subject OU that names a role,
// else DefaultRole (RoleNone refuses certificates that are not listed).
type CertMapping struct {
	Names       map[string]CertIdentity
	DefaultRole Role
}

// CertIdentity is one entry of a mapping file: {"name": {"tenant": .., "role": .., "models": [..]}}.
type CertIdentity struct {
	Tenant string   `json:"tenant"`
	Role   string   `json:"role"`
	Models []string `json:"models,omitempty"`
}

// LoadCertMapping reads a JSON mapping file ("" gives an empty mapping).
func LoadCertMapping(file string, defaultRole Role) (*CertMapping, error) {
	m := &CertMapping{Names: map[string]CertIdentity{}, DefaultRole: defaultRole}
	if file == "" {
		return m, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("mtls mapping: %w", err)
	}
	if err := json.Unmarshal(b, &m.Names); err != nil {
		return nil, fmt.Errorf("mtls mapping %s: %w", file, err)
	}
	for name, ci := range m.Names {
		if _, err := ParseRole(ci.Role); err != nil || ci.Tenant == "" {
			return nil, fmt.Errorf("mtls mapping %s: entry %q: want a tenant and a role (infer, manage or admin)", file, name)
		}
	}
	return m, nil
}

var errCertUnmapped = fmt.Errorf("the client certificate maps to no identity")

// identity maps a certificate the TLS handshake verified.
func (m *CertMapping) identity(c *x509.Certificate) (Identity, error) {
	names := append([]string{c.Subject.CommonName}, c.DNSNames...)
	names = append(names, c.EmailAddresses...)
	for _, n := range names {
		if ci, ok := m.Names[n]; ok && n != "" {
			r, _ := ParseRole(ci.Role)
			return Identity{Tenant: ci.Tenant, Subject: n, Role: r, Models: ci.Models, Via: ViaMTLS}, nil
		}
	}
	role := m.DefaultRole
	for _, ou := range c.Subject.OrganizationalUnit {
		if r, err := ParseRole(ou); err == nil {
			role = r
			break
		}
	}
	if c.Subject.CommonName == "" || role == RoleNone {
		return Identity{}, errCertUnmapped
	}
	return Identity{Tenant: c.Subject.CommonName, Subject: c.Subject.CommonName, Role: role, Via: ViaMTLS}, nil
}
