package auth

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ferryml/ferry/internal/auth/authtest"
	"github.com/ferryml/ferry/internal/registry"
)

func openRegistry(t *testing.T) registry.Store {
	t.Helper()
	st, err := registry.OpenDir(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func wantUnauthenticated(t *testing.T, what string, err error) {
	t.Helper()
	var u *Unauthenticated
	if !errors.As(err, &u) {
		t.Fatalf("%s: err = %v, want Unauthenticated", what, err)
	}
}

// TestKeysRevokedWithinTTL: a key works, a wrong secret or an unknown id is 401 alike,
// and a revoked key is refused once the cache's TTL has passed, with no restart.
func TestKeysRevokedWithinTTL(t *testing.T) {
	ctx := context.Background()
	st := openRegistry(t)
	k, full, err := st.CreateKey(ctx, registry.Key{Tenant: "acme", Role: registry.RoleManage, Models: []string{"mlp"}})
	if err != nil {
		t.Fatal(err)
	}
	const ttl = 300 * time.Millisecond
	a, err := New(ctx, Config{Keys: st, KeyTTL: ttl, Required: true})
	if err != nil {
		t.Fatal(err)
	}
	id, err := a.Authenticate(ctx, CredentialsOf("Bearer "+full, nil))
	if err != nil || id.Tenant != "acme" || id.Role != RoleManage || id.Subject != k.ID || id.Via != ViaKey {
		t.Fatalf("Authenticate = %+v, %v", id, err)
	}
	if _, err := a.Authenticate(ctx, CredentialsOf(full, nil)); err != nil {
		t.Fatalf("a bare key without the Bearer scheme: %v", err)
	}
	for what, v := range map[string]string{
		"wrong secret": "Bearer " + full[:len(full)-2] + "xx", "unknown id": "Bearer fk_0123456789abcdef_" + strings.Repeat("a", 43),
		"no key form": "Bearer hello", "basic scheme": "Basic YTpi", "nothing": "",
	} {
		_, err := a.Authenticate(ctx, CredentialsOf(v, nil))
		wantUnauthenticated(t, what, err)
		if err != nil && strings.Contains(err.Error(), full[20:]) {
			t.Fatalf("%s: the error echoes the secret: %v", what, err)
		}
	}
	if err := st.RevokeKey(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	revoked := time.Now()
	for {
		_, err := a.Authenticate(ctx, CredentialsOf("Bearer "+full, nil))
		if err != nil {
			wantUnauthenticated(t, "revoked", err)
			break
		}
		if time.Since(revoked) > ttl+100*time.Millisecond {
			t.Fatalf("revoked key still accepted %v after revocation (TTL %v)", time.Since(revoked), ttl)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("revoked key refused %v after RevokeKey (TTL %v)", time.Since(revoked).Round(time.Millisecond), ttl)
}

func goodClaims() jwt.MapClaims {
	c := authtest.Claims("acme", []any{"infer", "manage"})
	c["models"] = []any{"mlp*"}
	return c
}

func TestJWT(t *testing.T) {
	ctx := context.Background()
	is := authtest.NewIssuer(t)
	a, err := New(ctx, Config{JWT: &JWTConfig{JWKS: is.JWKSFile, Issuer: "https://issuer.test", Audience: "ferry"}, Required: true})
	if err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]string{
		"RS256": is.Token(t, jwt.SigningMethodRS256, "r1", is.RSA, goodClaims()),
		"ES256": is.Token(t, jwt.SigningMethodES256, "e1", is.EC, goodClaims()),
		"EdDSA": is.Token(t, jwt.SigningMethodEdDSA, "d1", is.Ed, goodClaims()),
	} {
		id, err := a.Authenticate(ctx, CredentialsOf("Bearer "+tok, nil))
		if err != nil || id.Tenant != "acme" || id.Subject != "svc-1" || id.Role != RoleManage || len(id.Models) != 1 || id.Via != ViaJWT {
			t.Errorf("%s: Authenticate = %+v, %v", name, id, err)
		}
	}
	with := func(k string, v any) jwt.MapClaims {
		c := goodClaims()
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	// An HS256 token whose HMAC secret is the RSA public key's bytes: the classic
	// algorithm-confusion attack; and "none".
	pubDER, _ := x509.MarshalPKIXPublicKey(&is.RSA.PublicKey)
	hs := jwt.NewWithClaims(jwt.SigningMethodHS256, goodClaims())
	hs.Header["kid"] = "r1"
	hsTok, _ := hs.SignedString(pubDER)
	none := jwt.NewWithClaims(jwt.SigningMethodNone, goodClaims())
	noneTok, _ := none.SignedString(jwt.UnsafeAllowNoneSignatureType)
	otherKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	for name, c := range map[string]struct {
		tok    string
		reason string
	}{
		"expired":                   {is.Token(t, jwt.SigningMethodRS256, "r1", is.RSA, with("exp", time.Now().Add(-time.Hour).Unix())), "expired"},
		"no exp":                    {is.Token(t, jwt.SigningMethodRS256, "r1", is.RSA, with("exp", nil)), "missing"},
		"not yet valid":             {is.Token(t, jwt.SigningMethodRS256, "r1", is.RSA, with("nbf", time.Now().Add(time.Hour).Unix())), "not valid yet"},
		"wrong audience":            {is.Token(t, jwt.SigningMethodRS256, "r1", is.RSA, with("aud", "someone-else")), "audience"},
		"wrong issuer":              {is.Token(t, jwt.SigningMethodRS256, "r1", is.RSA, with("iss", "https://evil.test")), "issuer"},
		"wrong key":                 {is.Token(t, jwt.SigningMethodRS256, "r1", otherKey, goodClaims()), "signature"},
		"unknown kid":               {is.Token(t, jwt.SigningMethodRS256, "zz", is.RSA, goodClaims()), "unverifiable"},
		"HS256 with the public key": {hsTok, "algorithm not allowed"},
		"alg none":                  {noneTok, ""},
		"no tenant":                 {is.Token(t, jwt.SigningMethodRS256, "r1", is.RSA, with("tenant", nil)), "tenant"},
		"unknown role":              {is.Token(t, jwt.SigningMethodRS256, "r1", is.RSA, with("role", "root")), "role"},
		"RS384": {func() string {
			tk := jwt.NewWithClaims(jwt.SigningMethodRS384, goodClaims())
			tk.Header["kid"] = "r1"
			s, _ := tk.SignedString(is.RSA)
			return s
		}(), "algorithm not allowed"},
	} {
		_, err := a.Authenticate(ctx, CredentialsOf("Bearer "+c.tok, nil))
		wantUnauthenticated(t, name, err)
		if !strings.Contains(err.Error(), c.reason) {
			t.Errorf("%s: %v, want the reason to say %q", name, err, c.reason)
		}
	}
	if _, err := New(ctx, Config{JWT: &JWTConfig{JWKS: is.JWKSFile}}); err == nil {
		t.Error("a JWKS without issuer and audience was accepted")
	}
}

func TestCertMapping(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "map.json")
	os.WriteFile(file, []byte(`{"billing.svc": {"tenant": "billing", "role": "manage", "models": ["mlp"]}}`), 0o600)
	m, err := LoadCertMapping(file, RoleInfer)
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(context.Background(), Config{Certs: m, Required: true})
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		cert *x509.Certificate
		want Identity
	}{
		"mapped by SAN": {&x509.Certificate{Subject: pkix.Name{CommonName: "x"}, DNSNames: []string{"billing.svc"}}, Identity{Tenant: "billing", Role: RoleManage, Subject: "billing.svc"}},
		"CN is tenant":  {&x509.Certificate{Subject: pkix.Name{CommonName: "acme"}}, Identity{Tenant: "acme", Role: RoleInfer, Subject: "acme"}},
		"role from OU":  {&x509.Certificate{Subject: pkix.Name{CommonName: "ops", OrganizationalUnit: []string{"team", "admin"}}}, Identity{Tenant: "ops", Role: RoleAdmin, Subject: "ops"}},
	} {
		id, err := a.Authenticate(context.Background(), Credentials{Cert: c.cert})
		if err != nil || id.Tenant != c.want.Tenant || id.Role != c.want.Role || id.Subject != c.want.Subject || id.Via != ViaMTLS {
			t.Errorf("%s: %+v, %v; want %+v", name, id, err, c.want)
		}
	}
	strict, _ := LoadCertMapping("", RoleNone)
	a, _ = New(context.Background(), Config{Certs: strict, Required: true})
	_, err = a.Authenticate(context.Background(), Credentials{Cert: &x509.Certificate{Subject: pkix.Name{CommonName: "acme"}}})
	wantUnauthenticated(t, "unlisted certificate with --auth-mtls-role none", err)
}

func TestAnonymousPolicy(t *testing.T) {
	a, err := New(context.Background(), Config{Anonymous: RoleInfer, AnonymousWhy: "listening beyond loopback"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Check(context.Background(), Credentials{}, ActionInfer, "mlp"); err != nil {
		t.Fatalf("anonymous infer: %v", err)
	}
	_, err = a.Check(context.Background(), Credentials{}, ActionManage, "mlp")
	var d *Denied
	if !errors.As(err, &d) || !strings.Contains(err.Error(), "listening beyond loopback") {
		t.Fatalf("anonymous manage: %v, want Denied naming why", err)
	}
}

// TestFirstKeyClosesARunningServer: with no key at start callers are anonymous; once a
// key exists, a request without credentials is refused within the TTL.
func TestFirstKeyClosesARunningServer(t *testing.T) {
	ctx := context.Background()
	st := openRegistry(t)
	present := func(ctx context.Context) (bool, error) {
		ks, err := st.ListKeys(ctx, "")
		return len(ks) > 0, err
	}
	const ttl = 200 * time.Millisecond
	a, err := New(ctx, Config{Keys: st, KeyTTL: ttl, KeysPresent: present, Anonymous: RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	if id, err := a.Authenticate(ctx, Credentials{}); err != nil || id.Via != ViaAnonymous {
		t.Fatalf("no keys yet: %+v, %v; want anonymous", id, err)
	}
	if _, _, err := st.CreateKey(ctx, registry.Key{Tenant: "t", Role: registry.RoleInfer}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(ttl + 50*time.Millisecond)
	_, err = a.Authenticate(ctx, Credentials{})
	wantUnauthenticated(t, "after the first key", err)
}
