package authtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Issuer is a test OIDC issuer: an RSA ("r1"), a P-256 ("e1") and an Ed25519 ("d1")
// key, and JWKSFile holding their public parts.
type Issuer struct {
	RSA      *rsa.PrivateKey
	EC       *ecdsa.PrivateKey
	Ed       ed25519.PrivateKey
	JWKSFile string
}

// The issuer and audience of Claims.
const (
	IssuerURL = "https://issuer.test"
	Audience  = "ferry"
)

// NewIssuer makes the keys and writes the JWKS in a test temp folder.
func NewIssuer(t testing.TB) *Issuer {
	t.Helper()
	is := &Issuer{}
	var err error
	if is.RSA, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	if is.EC, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	if _, is.Ed, err = ed25519.GenerateKey(rand.Reader); err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	ecPub, err := is.EC.PublicKey.Bytes() // 0x04 || X || Y
	if err != nil {
		t.Fatal(err)
	}
	set := map[string]any{"keys": []map[string]string{
		{"kty": "RSA", "kid": "r1", "use": "sig", "n": b64(is.RSA.N.Bytes()), "e": b64(big.NewInt(int64(is.RSA.E)).Bytes())},
		{"kty": "EC", "kid": "e1", "crv": "P-256", "x": b64(ecPub[1:33]), "y": b64(ecPub[33:])},
		{"kty": "OKP", "kid": "d1", "crv": "Ed25519", "x": b64(is.Ed.Public().(ed25519.PublicKey))},
	}}
	b, _ := json.Marshal(set)
	is.JWKSFile = filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(is.JWKSFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return is
}

// Token signs claims with method and key, naming kid.
func (is *Issuer) Token(t testing.TB, m jwt.SigningMethod, kid string, key crypto.Signer, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, claims)
	tok.Header["kid"] = kid
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Claims are valid claims for tenant and role, expiring in an hour.
func Claims(tenant string, role any) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{"iss": IssuerURL, "aud": Audience, "sub": "svc-1", "tenant": tenant, "role": role,
		"exp": now.Add(time.Hour).Unix(), "nbf": now.Add(-time.Minute).Unix(), "iat": now.Unix()}
}
