package auth

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Config is what the Authenticator checks. With none of Keys, JWT and Certs, every
// caller is anonymous and gets Anonymous as its role.
type Config struct {
	Keys   KeyStore // API keys; nil: none
	KeyTTL time.Duration
	JWT    *JWTConfig   // nil: no JWTs
	Certs  *CertMapping // nil: client certificates are not identities
	// Required: a request without credentials is refused (401). Without it, such a
	// request is anonymous with role Anonymous, and credentials given are still checked.
	Required bool
	// KeysPresent, when set and not Required, is asked (at most once per KeyTTL) whether
	// the store now holds an active key: once it does, credentials are required, without
	// a restart (the first key created on a running server closes it).
	KeysPresent func(ctx context.Context) (bool, error)
	// Anonymous is the role of a caller without credentials when not Required: admin
	// on loopback, infer on a listener beyond loopback without --insecure-management.
	Anonymous Role
	// AnonymousWhy is told to an anonymous caller refused for its role.
	AnonymousWhy string
	// OpenMetrics leaves /metrics open even when credentials are required.
	OpenMetrics bool
	// LaneBearers are path prefixes (the OpenAI-compatible /v1/) whose service reads
	// bearer values of its own: there, a bearer that is neither a Ferry key nor a JWT is
	// the service's (an OpenAI client always sends one, "sk-..." or "EMPTY") and is not
	// judged here: the request counts as without credentials.
	LaneBearers []string
	// LaneOpen are path prefixes whose service authenticates every request itself (the
	// LLM gateway with keys): this layer lets them through.
	LaneOpen []string
}

// Authenticator turns a request's credentials into an Identity and applies the rules.
type Authenticator struct {
	cfg  Config
	keys *keyCache
	jwt  *jwtVerifier

	mu          sync.Mutex
	present     bool // KeysPresent's last answer
	presentAt   time.Time
	presentOnce bool
}

// required reports whether a request without credentials is refused now.
func (a *Authenticator) required(ctx context.Context) bool {
	if a.cfg.Required || a.cfg.KeysPresent == nil {
		return a.cfg.Required
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	ttl := a.cfg.KeyTTL
	if ttl <= 0 {
		ttl = DefaultKeyTTL
	}
	if a.present || (a.presentOnce && time.Since(a.presentAt) < ttl) {
		return a.present // once keys exist, the policy stays closed until a restart
	}
	ok, err := a.cfg.KeysPresent(ctx)
	if err != nil {
		return true // a store that cannot say keeps the door closed, and is asked again next time
	}
	a.present, a.presentAt, a.presentOnce = ok, time.Now(), true
	return ok
}

// New builds an Authenticator; a JWKS is read now, so a bad one fails the start.
func New(ctx context.Context, cfg Config) (*Authenticator, error) {
	a := &Authenticator{cfg: cfg}
	if cfg.Keys != nil {
		a.keys = newKeyCache(cfg.Keys, cfg.KeyTTL)
	}
	if cfg.JWT != nil {
		v, err := newJWTVerifier(ctx, *cfg.JWT)
		if err != nil {
			return nil, err
		}
		a.jwt = v
	}
	if cfg.Required && a.keys == nil && a.jwt == nil && cfg.Certs == nil {
		return nil, errors.New("auth: credentials required but no API keys, JWKS or client certificates configured")
	}
	return a, nil
}

// Unauthenticated is a refusal for missing or bad credentials (HTTP 401, gRPC
// UNAUTHENTICATED). Its message says what is wrong, never the credential.
type Unauthenticated struct{ Msg string }

func (e *Unauthenticated) Error() string { return e.Msg }

// Credentials are what a request carries: its bearer value (the Authorization header
// or metadata, "Bearer " stripped) and a client certificate the TLS handshake verified.
type Credentials struct {
	Bearer string
	Cert   *x509.Certificate
	// Unusable: an Authorization value was sent in a scheme other than Bearer.
	Unusable bool
}

// CredentialsOf reads an Authorization value and a verified peer certificate.
func CredentialsOf(authorization string, cert *x509.Certificate) Credentials {
	b := BearerOf(authorization)
	return Credentials{Bearer: b, Cert: cert, Unusable: b == "" && strings.TrimSpace(authorization) != ""}
}

// BearerOf strips the "Bearer " scheme (any case) from an Authorization value; a bare
// Ferry key ("fk_...") is accepted too, as some clients send keys without the scheme.
func BearerOf(authorization string) string {
	v := strings.TrimSpace(authorization)
	if len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
		return strings.TrimSpace(v[7:])
	}
	if strings.HasPrefix(v, "fk_") {
		return v
	}
	return ""
}

// Authenticate establishes who is calling. A bearer value is a Ferry key when it has
// the key prefix, else a JWT; a bearer wins over a certificate.
func (a *Authenticator) Authenticate(ctx context.Context, c Credentials) (Identity, error) {
	switch {
	case c.Unusable:
		return Identity{}, &Unauthenticated{"the Authorization header's scheme is not supported (want Bearer)"}
	case c.Bearer != "" && strings.HasPrefix(c.Bearer, "fk_") && a.keys != nil:
		id, err := a.keys.authenticate(ctx, c.Bearer)
		if errors.Is(err, errBadKey) {
			return Identity{}, &Unauthenticated{err.Error()}
		}
		return id, err
	case c.Bearer != "" && a.jwt != nil && strings.Count(c.Bearer, ".") == 2:
		id, err := a.jwt.authenticate(ctx, c.Bearer)
		if err != nil {
			return Identity{}, &Unauthenticated{err.Error()}
		}
		return id, nil
	case c.Bearer != "":
		return Identity{}, &Unauthenticated{"the bearer credential is neither a known API key form nor a JWT this server accepts"}
	case c.Cert != nil && a.cfg.Certs != nil:
		id, err := a.cfg.Certs.identity(c.Cert)
		if err != nil {
			return Identity{}, &Unauthenticated{err.Error()}
		}
		return id, nil
	case a.required(ctx):
		return Identity{}, &Unauthenticated{"credentials required: send Authorization: Bearer <API key or JWT>, or a client certificate"}
	}
	return Identity{Tenant: "", Subject: "anonymous", Role: a.cfg.Anonymous, Via: ViaAnonymous}, nil
}

// Check authenticates and authorizes one request doing action on model; it returns
// the identity for the context, or an *Unauthenticated or *Denied error.
func (a *Authenticator) Check(ctx context.Context, c Credentials, action Action, model string) (Identity, error) {
	if action == ActionOpen {
		return Identity{}, nil
	}
	id, err := a.Authenticate(ctx, c)
	if err != nil {
		return Identity{}, err
	}
	if err := Authorize(id, action, model); err != nil {
		if id.Via == ViaAnonymous && a.cfg.AnonymousWhy != "" {
			return Identity{}, &Denied{fmt.Sprintf("%s: %s", err, a.cfg.AnonymousWhy)}
		}
		return Identity{}, err
	}
	return id, nil
}
