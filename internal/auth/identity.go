package auth

import (
	"context"
	"fmt"
	"path"
)

// Role is what a caller may do; a higher role implies the lower ones.
type Role int

// The roles, weakest first. RoleNone is no right at all (an unknown claim value).
const (
	RoleNone Role = iota
	RoleInfer
	RoleManage
	RoleAdmin
)

func (r Role) String() string {
	switch r {
	case RoleInfer:
		return "infer"
	case RoleManage:
		return "manage"
	case RoleAdmin:
		return "admin"
	}
	return "none"
}

// ParseRole reads "infer", "manage" or "admin".
func ParseRole(s string) (Role, error) {
	switch s {
	case "infer":
		return RoleInfer, nil
	case "manage":
		return RoleManage, nil
	case "admin":
		return RoleAdmin, nil
	}
	return RoleNone, fmt.Errorf("role %q: want infer, manage or admin", s)
}

// How an identity was established (Identity.Via).
const (
	ViaKey       = "key"
	ViaJWT       = "jwt"
	ViaMTLS      = "mtls"
	ViaAnonymous = "anonymous" // no authentication configured: the listener's policy decides the role
)

// Identity is an authenticated caller.
type Identity struct {
	Tenant  string
	Subject string // key id, JWT sub, certificate CN
	Role    Role
	// Models are glob patterns (path.Match) of the models it may infer; none: all.
	Models []string
	Via    string
}

// String names the caller for logs and the audit trail, never with a secret.
func (id Identity) String() string {
	if id.Via == ViaAnonymous {
		return "anonymous"
	}
	return id.Via + ":" + id.Tenant + "/" + id.Subject
}

// MayUse reports whether the identity's model patterns admit model. An empty model
// (a request about every model) is admitted only by an identity limited to none.
func (id Identity) MayUse(model string) bool {
	if len(id.Models) == 0 {
		return true
	}
	for _, p := range id.Models {
		if ok, err := path.Match(p, model); err == nil && ok && model != "" {
			return true
		}
	}
	return false
}

type ctxKey struct{}

// NewContext returns ctx carrying id.
func NewContext(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// FromContext returns the identity the middleware put in ctx.
func FromContext(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(ctxKey{}).(Identity)
	return id, ok
}
