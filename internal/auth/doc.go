// Package auth says who a caller is and what it may do: API keys (stored hashed in the
// registry), JWT bearer tokens checked against a JWKS, and verified mTLS client
// certificates each give an Identity (tenant, subject, role, model patterns); the
// Authorizer's rules decide each route or RPC from it. Roles are ordered
// infer < manage < admin, each implying the ones before it.
//
// Where things go: identity.go holds Identity, Role and the context helpers; rules.go
// classifies HTTP routes and gRPC methods into actions and decides them (Authorize);
// keys.go checks API keys through a short-TTL cache over the registry; jwt.go verifies
// JWTs and reads JWKS files or URLs; mtls.go maps client certificates; authn.go
// combines them into the Authenticator; http.go and grpc.go are the HTTP middleware
// and gRPC interceptors cmd/ferry puts at the root of each listener; tls.go builds
// server TLS configs whose certificates are reloaded when their files change.
//
// The package reads no flags: cmd/ferry's security.go builds its Config. It imports
// the registry only for the stored Key type and its hash comparison.
package auth
