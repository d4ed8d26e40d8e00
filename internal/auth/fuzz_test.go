package auth

import (
	"context"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ferryml/ferry/internal/auth/authtest"
)

// FuzzAuthenticateBearer feeds any Authorization value to an authenticator that takes
// API keys and JWTs: it must not panic, and no value the fuzzer makes is a credential.
func FuzzAuthenticateBearer(f *testing.F) {
	is := authtest.NewIssuer(f)
	f.Add("Bearer fk_0123456789abcdef_AAAA")
	f.Add("bearer " + "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.")
	f.Add("Basic YTpi")
	f.Add("Bearer a.b.c")
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, goodClaims())
	tok.Header["kid"] = "r1"
	good, _ := tok.SignedString(is.RSA)
	f.Add("Bearer " + good[:len(good)-3] + "AAA")
	a, err := New(context.Background(), Config{JWT: &JWTConfig{JWKS: is.JWKSFile, Issuer: "https://issuer.test", Audience: "ferry"}, Required: true})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if id, err := a.Authenticate(context.Background(), CredentialsOf(v, nil)); err == nil {
			t.Fatalf("%q authenticated as %+v", v, id)
		}
	})
}

// FuzzParseJWKS: any bytes as a JWK set parse or fail, never panic.
func FuzzParseJWKS(f *testing.F) {
	f.Add([]byte(`{"keys":[{"kty":"RSA","kid":"a","n":"AQAB","e":"AQAB"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		keys, err := ParseJWKS(b)
		if err == nil && len(keys) == 0 {
			t.Fatal("no error and no key")
		}
	})
}
