package auth

import (
	"crypto/x509"
	"errors"
	"net/http"
	"strings"

	"github.com/ferryml/ferry/internal/transport/middleware"
)

// HTTP wraps the HTTP root: each request is classified by method and path
// (ClassifyHTTP), authenticated and authorized before next sees it, with its Identity
// in the context. Refusals are JSON: 401 with WWW-Authenticate: Bearer, or 403.
func (a *Authenticator) HTTP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		action, model := ClassifyHTTP(r.Method, r.URL.Path)
		if a.cfg.OpenMetrics && r.URL.Path == "/metrics" {
			action = ActionOpen
		}
		if action == ActionOpen || hasPrefix(r.URL.Path, a.cfg.LaneOpen) {
			next.ServeHTTP(w, r)
			return
		}
		c := CredentialsOf(r.Header.Get("Authorization"), verifiedCert(r))
		if hasPrefix(r.URL.Path, a.cfg.LaneBearers) && !a.ownsBearer(c.Bearer) {
			c.Bearer = ""
		}
		id, err := a.Check(r.Context(), c, action, model)
		if err != nil {
			status, msg := httpRefusal(err)
			if status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="ferry"`)
			}
			middleware.WriteError(w, status, msg)
			return
		}
		next.ServeHTTP(w, r.WithContext(NewContext(r.Context(), id)))
	})
}

func hasPrefix(p string, prefixes []string) bool {
	for _, pre := range prefixes {
		if strings.HasPrefix(p, pre) {
			return true
		}
	}
	return false
}

// ownsBearer reports whether a bearer value has a form this layer judges: a Ferry key,
// or a JWT when JWTs are accepted.
func (a *Authenticator) ownsBearer(b string) bool {
	return strings.HasPrefix(b, "fk_") || (a.jwt != nil && strings.Count(b, ".") == 2)
}

func verifiedCert(r *http.Request) *x509.Certificate {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		return nil
	}
	return r.TLS.VerifiedChains[0][0]
}

// httpRefusal maps an error of Check to a status and a message; any other error (the
// key store is unreachable) is a 503: the caller may retry, and is not told it is wrong.
func httpRefusal(err error) (int, string) {
	var u *Unauthenticated
	var d *Denied
	switch {
	case errors.As(err, &u):
		return http.StatusUnauthorized, "unauthenticated: " + u.Msg
	case errors.As(err, &d):
		return http.StatusForbidden, "permission denied: " + d.Msg
	}
	return http.StatusServiceUnavailable, "authentication is unavailable: the key store did not answer"
}
