package core

import (
	"strconv"

	"github.com/ferryml/ferry/internal/router"
)

// Header reads a request header (HTTP) or metadata key (gRPC) by name, ignoring case;
// "" when absent. http.Header satisfies it; the gRPC transport adapts its metadata.
type Header interface {
	Get(name string) string
}

// routeAttrs is a request as the router reads it. It holds one pointer, so passing it
// as router.Attrs does not allocate.
type routeAttrs struct{ req *InferRequest }

func (a routeAttrs) Header(name string) string {
	if a.req.Header == nil {
		return ""
	}
	return a.req.Header.Get(name)
}

// Param formats a request parameter as the router compares it: strings as they are,
// numbers and booleans in their shortest form.
func (a routeAttrs) Param(name string) string {
	switch v := a.req.Parameters[name].(type) {
	case string:
		return v
	case int64:
		return strconv.FormatInt(v, 10)
	case int:
		return strconv.Itoa(v)
	case uint64:
		return strconv.FormatUint(v, 10)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	}
	return ""
}

// route decides which version serves req: the one it names (an alias resolved), else
// the endpoint's policy's choice ("" leaves it to the model's version policy). shadow
// is the version that also gets a copy, "" for none.
func (s *Server) route(req *InferRequest) (version string, route router.Route, shadow string, err error) {
	return routeBy(s.routes.Get(req.Model), req)
}

// routeBy is route under policy p (nil: none).
func routeBy(p *router.Policy, req *InferRequest) (version string, route router.Route, shadow string, err error) {
	if req.Version != "" {
		v, err := resolve(p, req.Model, req.Version)
		return v, "", "", err
	}
	if p == nil {
		return "", "", "", nil
	}
	d := p.Decide(routeAttrs{req})
	return d.Version, d.Route, d.Shadow, nil
}

// resolveVersion maps an alias in a version to the version it names; numbers and ""
// pass through. Anything else is invalid (400), as a version that is not a number was
// before aliases.
func (s *Server) resolveVersion(model, version string) (string, error) {
	if version == "" {
		return "", nil
	}
	return resolve(s.routes.Get(model), model, version)
}

func resolve(p *router.Policy, model, version string) (string, error) {
	if v, ok := p.Resolve(version); ok && v != "" {
		return v, nil
	}
	return "", Invalidf("model '%s' has no alias %q, and a version is a number", model, version)
}
