// Package authtest makes what auth's and cmd/ferry's tests need: a throwaway
// certificate authority issuing server and client certificates as PEM files, and a
// throwaway OIDC issuer (keys, a JWKS file, signed tokens).
// It is imported only by tests.
package authtest
