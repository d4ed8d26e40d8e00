package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// JWTConfig checks bearer JWTs from an OIDC issuer.
type JWTConfig struct {
	// JWKS is the issuer's key set: a file path or an http(s) URL.
	JWKS     string
	Issuer   string // required: the iss claim must equal it
	Audience string // required: the aud claim must contain it
	// Claim names mapped to the identity (defaults "tenant", "role", "models"; the
	// subject is always "sub"). A role claim may be a string or a list (the highest wins).
	TenantClaim, RoleClaim, ModelsClaim string
	// Leeway is the clock skew allowed on exp, nbf and iat (default 30 s).
	Leeway time.Duration
	Client *http.Client // for a JWKS URL; default a client with a 10 s timeout
}

// jwtAlgs is the allow-list: asymmetric only. "none" and the HS family are never
// accepted, so a public key can never be used as an HMAC secret.
var jwtAlgs = []string{"RS256", "ES256", "EdDSA"}

// jwksRefresh is how often a JWKS is read again, and jwksMinGap how soon after a
// refresh a token with an unknown kid may cause another (the issuer rotated keys).
const (
	jwksRefresh = 5 * time.Minute
	jwksMinGap  = 30 * time.Second
)

type jwtVerifier struct {
	cfg    JWTConfig
	parser *jwt.Parser

	mu      sync.Mutex
	keys    map[string]crypto.PublicKey
	fetched time.Time
}

func newJWTVerifier(ctx context.Context, cfg JWTConfig) (*jwtVerifier, error) {
	if cfg.Issuer == "" || cfg.Audience == "" {
		return nil, errors.New("jwt: an issuer and an audience are required with a JWKS (--jwt-issuer, --jwt-audience)")
	}
	for _, d := range []struct {
		p   *string
		def string
	}{{&cfg.TenantClaim, "tenant"}, {&cfg.RoleClaim, "role"}, {&cfg.ModelsClaim, "models"}} {
		if *d.p == "" {
			*d.p = d.def
		}
	}
	if cfg.Leeway == 0 {
		cfg.Leeway = 30 * time.Second
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 10 * time.Second}
	}
	v := &jwtVerifier{cfg: cfg, parser: jwt.NewParser(jwt.WithValidMethods(jwtAlgs), jwt.WithIssuer(cfg.Issuer),
		jwt.WithAudience(cfg.Audience), jwt.WithExpirationRequired(), jwt.WithLeeway(cfg.Leeway), jwt.WithIssuedAt())}
	if err := v.refresh(ctx); err != nil {
		return nil, err
	}
	return v, nil
}

var errBadJWT = errors.New("the bearer token is not a valid JWT for this server")

func (v *jwtVerifier) authenticate(ctx context.Context, token string) (Identity, error) {
	claims := jwt.MapClaims{}
	_, err := v.parser.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) { return v.key(ctx, t) })
	if err != nil {
		return Identity{}, fmt.Errorf("%w: %s", errBadJWT, jwtReason(err))
	}
	sub, _ := claims["sub"].(string)
	tenant, _ := claims[v.cfg.TenantClaim].(string)
	if tenant == "" {
		return Identity{}, fmt.Errorf("%w: no %q claim", errBadJWT, v.cfg.TenantClaim)
	}
	role := RoleNone
	for _, s := range stringsOf(claims[v.cfg.RoleClaim]) {
		if r, err := ParseRole(s); err == nil && r > role {
			role = r
		}
	}
	if role == RoleNone {
		return Identity{}, fmt.Errorf("%w: no role in the %q claim (want infer, manage or admin)", errBadJWT, v.cfg.RoleClaim)
	}
	return Identity{Tenant: tenant, Subject: sub, Role: role, Models: stringsOf(claims[v.cfg.ModelsClaim]), Via: ViaJWT}, nil
}

// jwtReason is the library's reason without the token: which check failed.
func jwtReason(err error) string {
	if strings.Contains(err.Error(), "signing method") {
		return "signing algorithm not allowed (want RS256, ES256 or EdDSA)"
	}
	for _, e := range []error{jwt.ErrTokenExpired, jwt.ErrTokenNotValidYet, jwt.ErrTokenInvalidIssuer, jwt.ErrTokenInvalidAudience,
		jwt.ErrTokenSignatureInvalid, jwt.ErrTokenMalformed, jwt.ErrTokenUnverifiable, jwt.ErrTokenUsedBeforeIssued, jwt.ErrTokenRequiredClaimMissing} {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	return "rejected"
}

func stringsOf(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// key finds the token's verification key by kid (or the only key), reading the JWKS
// again when it is old or the kid is unknown.
func (v *jwtVerifier) key(ctx context.Context, t *jwt.Token) (any, error) {
	kid, _ := t.Header["kid"].(string)
	v.mu.Lock()
	k, ok := v.pick(kid)
	stale := time.Since(v.fetched) > jwksRefresh || (!ok && time.Since(v.fetched) > jwksMinGap)
	v.mu.Unlock()
	if stale {
		if err := v.refresh(ctx); err == nil {
			v.mu.Lock()
			k, ok = v.pick(kid)
			v.mu.Unlock()
		}
	}
	if !ok {
		return nil, fmt.Errorf("no key %q in the JWKS", kid)
	}
	return k, nil
}

func (v *jwtVerifier) pick(kid string) (crypto.PublicKey, bool) {
	if kid == "" && len(v.keys) == 1 {
		for _, k := range v.keys {
			return k, true
		}
	}
	k, ok := v.keys[kid]
	return k, ok
}

func (v *jwtVerifier) refresh(ctx context.Context) error {
	b, err := v.read(ctx)
	if err == nil {
		var keys map[string]crypto.PublicKey
		if keys, err = ParseJWKS(b); err == nil {
			v.mu.Lock()
			v.keys, v.fetched = keys, time.Now()
			v.mu.Unlock()
			return nil
		}
	}
	v.mu.Lock()
	v.fetched = time.Now() // a failed read waits jwksMinGap too, keeping the old keys
	v.mu.Unlock()
	return fmt.Errorf("jwks %s: %w", v.cfg.JWKS, err)
}

func (v *jwtVerifier) read(ctx context.Context) ([]byte, error) {
	src := v.cfg.JWKS
	if !strings.HasPrefix(src, "https://") && !strings.HasPrefix(src, "http://") {
		return os.ReadFile(src)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
	if err != nil {
		return nil, err
	}
	resp, err := v.cfg.Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %s", resp.Status)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 1<<20))
}

// jwk is one key of a JWKS (RFC 7517) of the kinds the allow-list can use.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Crv string `json:"crv"`
	N   string `json:"n"`
	E   string `json:"e"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// ParseJWKS reads a JWK Set's RSA, P-256 and Ed25519 signing keys by kid. Keys of
// other kinds or for encryption are skipped; a set with no usable key is an error.
func ParseJWKS(b []byte) (map[string]crypto.PublicKey, error) {
	var set struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, fmt.Errorf("not a JWK set: %w", err)
	}
	out := map[string]crypto.PublicKey{}
	for _, k := range set.Keys {
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		pk, err := k.public()
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", k.Kid, err)
		}
		if pk != nil {
			out[k.Kid] = pk
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no RSA, P-256 or Ed25519 signing key in the set")
	}
	return out, nil
}

func (k jwk) public() (crypto.PublicKey, error) {
	switch {
	case k.Kty == "RSA":
		n, e := b64int(k.N), b64int(k.E)
		if n == nil || e == nil || !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31 || n.BitLen() < 2048 {
			return nil, errors.New("RSA key: bad n or e (n must be >= 2048 bits)")
		}
		return &rsa.PublicKey{N: n, E: int(e.Int64())}, nil
	case k.Kty == "EC" && k.Crv == "P-256":
		x, y := b64bytes(k.X), b64bytes(k.Y)
		if len(x) != 32 || len(y) != 32 {
			return nil, errors.New("P-256 key: x and y must be 32 bytes")
		}
		pk, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return nil, fmt.Errorf("P-256 key: %w", err)
		}
		return pk, nil
	case k.Kty == "OKP" && k.Crv == "Ed25519":
		x := b64bytes(k.X)
		if len(x) != ed25519.PublicKeySize {
			return nil, errors.New("Ed25519 key: x must be 32 bytes")
		}
		return ed25519.PublicKey(x), nil
	}
	return nil, nil
}

func b64bytes(s string) []byte {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		return nil
	}
	return b
}

func b64int(s string) *big.Int {
	b := b64bytes(s)
	if len(b) == 0 {
		return nil
	}
	return new(big.Int).SetBytes(b)
}
