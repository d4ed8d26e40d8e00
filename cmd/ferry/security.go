package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/ferryml/ferry/internal/auth"
	"github.com/ferryml/ferry/internal/mgmtclient"
	"github.com/ferryml/ferry/internal/registry"
	"github.com/ferryml/ferry/internal/transport/middleware"
)

// security.go wires authentication, authorization and TLS (issue 17) into both
// listeners: the flags, the choice of policy at start (credentials required, or an
// anonymous caller's role), the HTTP layer and gRPC options routes.go adds, and the
// TLS listeners.

// securityConfig is what `ferry serve` reads for auth and TLS.
type securityConfig struct {
	tlsCert, tlsKey, tlsClientCA  string
	tlsClientAuth                 string // require | verify-if-given
	jwks, jwtIssuer, jwtAudience  string
	jwtTenant, jwtRole, jwtModels string
	mtlsMap, mtlsRole             string
	keyTTL                        time.Duration
	openMetrics                   bool
	insecureManagement            bool
}

func (c *securityConfig) addFlags(f *pflag.FlagSet) {
	f.StringVar(&c.tlsCert, "tls-cert", "", "serve REST and gRPC over TLS with this PEM certificate (reloaded when the file changes)")
	f.StringVar(&c.tlsKey, "tls-key", "", "the PEM private key of --tls-cert")
	f.StringVar(&c.tlsClientCA, "tls-client-ca", "", "verify client certificates against this PEM CA bundle; a verified certificate is an identity (mTLS)")
	f.StringVar(&c.tlsClientAuth, "tls-client-auth", "require", "with --tls-client-ca: require (refuse handshakes without a client certificate) or verify-if-given")
	f.StringVar(&c.jwks, "jwks", "", "accept JWT bearer tokens signed by a key of this JWKS (a file or an http(s) URL; RS256, ES256 or EdDSA)")
	f.StringVar(&c.jwtIssuer, "jwt-issuer", "", "the iss claim JWTs must carry (required with --jwks)")
	f.StringVar(&c.jwtAudience, "jwt-audience", "", "the audience JWTs must name (required with --jwks)")
	f.StringVar(&c.jwtTenant, "jwt-tenant-claim", "tenant", "the JWT claim that names the tenant")
	f.StringVar(&c.jwtRole, "jwt-role-claim", "role", "the JWT claim that holds the role (infer, manage or admin; a string or a list)")
	f.StringVar(&c.jwtModels, "jwt-models-claim", "models", "the JWT claim that lists the model patterns a token may use (absent: all)")
	f.StringVar(&c.mtlsMap, "auth-mtls-map", "", "JSON file mapping client certificate names (CN or SAN) to {tenant, role, models}; unlisted certificates: CN is the tenant")
	f.StringVar(&c.mtlsRole, "auth-mtls-role", "infer", "role of a client certificate that is not in --auth-mtls-map and has no role in its OU (none: refuse it)")
	f.DurationVar(&c.keyTTL, "auth-key-ttl", auth.DefaultKeyTTL, "how long a checked API key is trusted without asking the registry: a revoked key is refused within this time")
	f.BoolVar(&c.openMetrics, "auth-open-metrics", false, "serve /metrics without credentials even when credentials are required")
	f.BoolVar(&c.insecureManagement, "insecure-management", false, "allow load/unload and other management calls without authentication on a listener bound beyond loopback")
}

// security is one server's authenticator and TLS config (nil without --tls-cert).
type security struct {
	auth *auth.Authenticator
	tls  *tls.Config
	mode string // what the start log says about the policy
}

// newSecurity picks the policy. Credentials are required on every route but health
// when the registry holds an active key (at start, or from the first key created while
// serving, seen within --auth-key-ttl), --jwks is set, or --tls-client-ca is set. Otherwise callers are anonymous: admin when every listener is on loopback
// or with --insecure-management; else infer, so management routes refuse each call
// with a 403 saying why (the server still serves inference: Ferry in a container
// binds 0.0.0.0 and must not stop, yet its management must not be open to the network).
func newSecurity(ctx context.Context, cfg serveConfig, store registry.Store, lane laneAuth, log *slog.Logger) (*security, error) {
	sc := cfg.security
	s := &security{}
	var err error
	if sc.tlsCert != "" || sc.tlsKey != "" || sc.tlsClientCA != "" {
		if s.tls, err = serverTLS(sc); err != nil {
			return nil, err
		}
	}
	ac := auth.Config{KeyTTL: sc.keyTTL, OpenMetrics: sc.openMetrics, Anonymous: auth.RoleAdmin, LaneBearers: lane.bearers, LaneOpen: lane.open}
	var why []string
	if store != nil {
		ac.Keys = store
		ac.KeysPresent = func(ctx context.Context) (bool, error) { n, err := activeKeys(ctx, store); return n > 0, err }
		if n, err := activeKeys(ctx, store); err != nil {
			return nil, fmt.Errorf("auth: reading the registry's keys: %w", err)
		} else if n > 0 {
			why = append(why, fmt.Sprintf("%d API keys", n))
		}
	}
	if sc.jwks != "" {
		ac.JWT = &auth.JWTConfig{JWKS: sc.jwks, Issuer: sc.jwtIssuer, Audience: sc.jwtAudience, TenantClaim: sc.jwtTenant, RoleClaim: sc.jwtRole, ModelsClaim: sc.jwtModels}
		why = append(why, "JWTs from "+sc.jwks)
	}
	if sc.tlsClientCA != "" {
		role := auth.RoleNone
		if sc.mtlsRole != "none" {
			if role, err = auth.ParseRole(sc.mtlsRole); err != nil {
				return nil, fmt.Errorf("--auth-mtls-role: %w", err)
			}
		}
		if ac.Certs, err = auth.LoadCertMapping(sc.mtlsMap, role); err != nil {
			return nil, err
		}
		why = append(why, "client certificates")
	}
	ac.Required = len(why) > 0
	exposed := exposedAddrs(cfg)
	switch {
	case ac.Required:
		s.mode = "credentials required on every route but health (" + strings.Join(why, ", ") + ")"
	case len(exposed) > 0 && !sc.insecureManagement:
		ac.Anonymous = auth.RoleInfer
		ac.AnonymousWhy = fmt.Sprintf("management is refused because ferry serve listens beyond loopback (%s) with no authentication configured; "+
			"create a key (ferry keys create --data-dir DIR), set --jwks or --tls-client-ca, or pass --insecure-management", strings.Join(exposed, ", "))
		s.mode = "no authentication; listening beyond loopback, so management routes refuse every call (--insecure-management allows them)"
	case len(exposed) > 0:
		s.mode = "no authentication; --insecure-management: anyone who reaches " + strings.Join(exposed, ", ") + " may load and unload models"
	default:
		s.mode = "no authentication; loopback only: every caller may do everything"
	}
	if s.auth, err = auth.New(ctx, ac); err != nil {
		return nil, err
	}
	log.Info("auth", "policy", s.mode, "tls", s.tls != nil)
	return s, nil
}

func serverTLS(sc securityConfig) (*tls.Config, error) {
	if sc.tlsClientAuth != "require" && sc.tlsClientAuth != "verify-if-given" {
		return nil, fmt.Errorf("--tls-client-auth %q: want require or verify-if-given", sc.tlsClientAuth)
	}
	cfg, _, err := auth.ServerTLS(auth.TLSFiles{Cert: sc.tlsCert, Key: sc.tlsKey, ClientCA: sc.tlsClientCA, RequireClientCert: sc.tlsClientAuth == "require"})
	return cfg, err
}

func activeKeys(ctx context.Context, store registry.Store) (int, error) {
	keys, err := store.ListKeys(ctx, "")
	n := 0
	for _, k := range keys {
		if k.Active() {
			n++
		}
	}
	return n, err
}

// exposedAddrs lists the listener addresses that are not loopback ("0.0.0.0", "::",
// a host name other than localhost, an address of an interface).
func exposedAddrs(cfg serveConfig) []string {
	hosts := []string{cfg.httpAddr, cfg.grpcAddr}
	if cfg.metricsOn {
		hosts = append(hosts, cfg.metricsAddr)
	}
	var out []string
	for _, h := range hosts {
		if h == "" {
			h = cfg.host
		}
		if !isLoopback(h) && !contains(out, h) {
			out = append(out, h)
		}
	}
	return out
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// httpLayers are the layers routes.go puts innermost around the HTTP root's routes.
func (s *security) httpLayers() []middleware.Layer {
	return []middleware.Layer{s.auth.HTTP}
}

// grpcOptions are the gRPC server's TLS credentials and auth interceptors.
func (s *security) grpcOptions() []grpc.ServerOption {
	opts := []grpc.ServerOption{grpc.ChainUnaryInterceptor(s.auth.Unary()), grpc.ChainStreamInterceptor(s.auth.Stream())}
	if s.tls != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(s.tls)))
	}
	return opts
}

// secureListeners puts TLS on the HTTP and metrics listeners and auth on the metrics
// listener's handler (gRPC does its own TLS through grpcOptions).
func (s *security) secureListeners(srv *server) {
	if srv.metricsSrv != nil {
		srv.metricsSrv.Handler = s.auth.HTTP(srv.metricsSrv.Handler)
	}
	if s.tls == nil {
		return
	}
	srv.httpLn = tls.NewListener(srv.httpLn, s.tls)
	if srv.metricsLn != nil {
		srv.metricsLn = tls.NewListener(srv.metricsLn, s.tls)
	}
}

// registry is the platform's store, or nil without one (no API keys then).
func (p *platform) registry() registry.Store {
	if p == nil {
		return nil
	}
	return p.store
}

// bearerClient is the management commands' HTTP client: with a key ($FERRY_API_KEY),
// every request carries it as a bearer token; without one, nil (mgmtclient's default).
func bearerClient(key string) *http.Client {
	if key == "" {
		return nil
	}
	return &http.Client{Timeout: mgmtclient.DefaultTimeout, Transport: bearer{key: key, next: http.DefaultTransport}}
}

type bearer struct {
	key  string
	next http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.key)
	return b.next.RoundTrip(r)
}
