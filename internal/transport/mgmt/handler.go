package mgmt

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/ferryml/ferry/internal/auth"
	"github.com/ferryml/ferry/internal/mgmtapi"
	"github.com/ferryml/ferry/internal/registry"
	"github.com/ferryml/ferry/internal/rollout"
	"github.com/ferryml/ferry/internal/router"
	"github.com/ferryml/ferry/internal/transport/middleware"
)

// Service is what the management routes need. cmd/ferry implements it around the
// registry, the router table, the model repository and the rollout controller.
type Service interface {
	Store() registry.Store // reads, and registry-only changes (models, stages)
	// PushVersion stores a tar of a version folder's files, registers it (v carries model,
	// tags, metrics, params, lineage, signature, backend; the service fills version, source,
	// digest, created) and places it in the model repository.
	PushVersion(ctx context.Context, v registry.ModelVersion, artifact io.Reader) (registry.ModelVersion, error)
	SetAlias(ctx context.Context, model, alias string, version int64) error // loads the version first
	DeleteAlias(ctx context.Context, model, alias string) error
	StoredPolicy(model string) *router.Policy // as set through SetPolicy; nil: none
	Policy(model string) *router.Policy       // live: with aliases (and a rollout's split); nil: none
	SetPolicy(ctx context.Context, model string, p *router.Policy) error
	StartRollout(ctx context.Context, r rollout.Rollout) error        // fills Stable when "" ; rollout.ErrConflict
	RolloutAction(ctx context.Context, endpoint, action string) error // "promote"|"pause"|"resume"|"abort"
	RolloutStatus(endpoint string) (rollout.Status, []rollout.Change, bool)
	Rollouts() []rollout.Status
}

// Options are the handler's limits (0: the default).
type Options struct {
	// MaxBodyBytes bounds a JSON request body (default 1 MiB).
	MaxBodyBytes int64
	// MaxArtifactBytes bounds a push's body, the tar of a version folder (default
	// registry.DefaultMaxArtifactBytes).
	MaxArtifactBytes int64
	// MaxFeedbackBytes bounds a feedback body (default DefaultMaxFeedbackBytes).
	MaxFeedbackBytes int64
	Logger           *slog.Logger
	// Feedback serves /api/v1/feedback and /api/v1/quality/{model}; Alerts serves
	// /api/v1/alerts. Nil: those routes answer 404 naming what is not enabled.
	Feedback Feedback
	Alerts   Alerts
	// Drift serves /api/v1/drift and /api/v1/drift/{model}[/baseline]; nil: 404.
	Drift Drift
	// MaxBaselineBytes bounds a baseline upload (default DefaultMaxBaselineBytes).
	MaxBaselineBytes int64
	// Logs reads the inference log for GET /api/v1/logs; nil answers 404.
	Logs LogReader
	// Jobs serves /api/v1/jobs (server-side batch jobs); nil answers 404.
	Jobs Jobs
}

// DefaultMaxBodyBytes is Options.MaxBodyBytes's default: policies and rollouts are small.
const DefaultMaxBodyBytes = 1 << 20

// Handler serves everything under /api/v1/. Without a Service (a server with no
// registry) the registry's routes answer 404 naming what to start, and the monitoring
// routes, which need none, are served alone.
type Handler struct {
	svc    Service
	o      Options
	log    *slog.Logger
	routes []route
}

var _ http.Handler = (*Handler)(nil)

// New returns the handler; it starts nothing.
func New(svc Service, o Options) *Handler {
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.MaxArtifactBytes <= 0 {
		o.MaxArtifactBytes = registry.DefaultMaxArtifactBytes
	}
	if o.MaxBaselineBytes <= 0 {
		o.MaxBaselineBytes = DefaultMaxBaselineBytes
	}
	if o.MaxFeedbackBytes <= 0 {
		o.MaxFeedbackBytes = DefaultMaxFeedbackBytes
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{svc: svc, o: o, log: o.Logger}
	h.routes = h.table()
	return h
}

// route is one method and path pattern: literal segments, and "{name}" segments that
// capture whatever one segment holds.
type route struct {
	method  string
	pattern []string
	serve   func(w http.ResponseWriter, r *http.Request, p params) error
}

// params are a matched route's captured segments, by name.
type params map[string]string

func (h *Handler) table() []route {
	rt := func(method, pattern string, f func(http.ResponseWriter, *http.Request, params) error) route {
		return route{method: method, pattern: strings.Split(pattern, "/"), serve: f}
	}
	return []route{
		rt("GET", "models", h.listModels),
		rt("POST", "models", h.createModel),
		rt("GET", "models/{name}", h.getModel),
		rt("PATCH", "models/{name}", h.patchModel),
		rt("DELETE", "models/{name}", h.deleteModel),
		rt("GET", "models/{name}/versions", h.listVersions),
		rt("POST", "models/{name}/versions", h.pushVersion),
		rt("GET", "models/{name}/versions/{v}", h.getVersion),
		rt("POST", "models/{name}/versions/{v}/stage", h.stageVersion),
		rt("GET", "models/{name}/aliases", h.listAliases),
		rt("PUT", "models/{name}/aliases/{alias}", h.setAlias),
		rt("DELETE", "models/{name}/aliases/{alias}", h.deleteAlias),
		rt("GET", "endpoints", h.listEndpoints),
		rt("GET", "endpoints/{name}", h.getEndpoint),
		rt("PUT", "endpoints/{name}", h.putEndpoint),
		rt("GET", "rollouts", h.listRollouts),
		rt("POST", "rollouts", h.startRollout),
		rt("GET", "rollouts/{endpoint}", h.getRollout),
		rt("POST", "rollouts/{endpoint}/{action}", h.rolloutAction),
		rt("GET", "audit", h.audit),
		rt("POST", "feedback", h.postFeedback),
		rt("GET", "quality/{model}", h.getQuality),
		rt("GET", "alerts", h.listAlerts),
		rt("GET", "drift", h.listDrift),
		rt("GET", "drift/{model}", h.getDrift),
		rt("PUT", "drift/{model}/baseline", h.putBaseline),
		rt("GET", "logs", h.logs),       // logs.go
		rt("POST", "jobs", h.submitJob), // jobs.go
		rt("GET", "jobs", h.listJobs),
		rt("GET", "jobs/{id}", h.getJob),
		rt("POST", "jobs/{id}/cancel", h.cancelJob),
		rt("DELETE", "jobs/{id}", h.cancelJob),
	}
}

// registryRoots are the first path segments of the routes a Service serves.
var registryRoots = map[string]bool{"models": true, "endpoints": true, "rollouts": true, "audit": true}

// ServeHTTP matches the request to a route and serves it; errors become {"error": ...}
// with the status statusOf gives them. A change a browser sends is refused first
// (middleware.BrowserWrite): this handler is mounted outside the root's layers.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := middleware.BrowserWrite(r); err != nil { // CSRF and DNS rebinding
		writeError(w, http.StatusForbidden, err.Error())
		return
	}
	segs, ok := segments(r.URL.EscapedPath())
	if !ok {
		writeError(w, http.StatusNotFound, "no such management route: "+r.URL.Path)
		return
	}
	var allowed []string
	for _, rt := range h.routes {
		p, ok := rt.match(segs)
		if !ok {
			continue
		}
		if rt.method != r.Method {
			allowed = append(allowed, rt.method)
			continue
		}
		if h.svc == nil && registryRoots[rt.pattern[0]] {
			writeError(w, http.StatusNotFound, "the model registry is not enabled: start ferry serve with --data-dir or --registry-url")
			return
		}
		r = r.WithContext(withActor(r))
		if err := rt.serve(w, r, p); err != nil {
			h.fail(w, r, err)
		}
		return
	}
	if len(allowed) > 0 {
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		writeError(w, http.StatusMethodNotAllowed, r.Method+" is not allowed here; allowed: "+strings.Join(allowed, ", "))
		return
	}
	writeError(w, http.StatusNotFound, "no such management route: "+r.URL.Path)
}

// segments splits the escaped path after /api/v1/ and unescapes each segment alone,
// so an escaped '/' stays inside its segment. One trailing slash is ignored.
func segments(escaped string) ([]string, bool) {
	rest, ok := strings.CutPrefix(escaped, mgmtapi.Prefix)
	if !ok {
		return nil, false
	}
	rest = strings.TrimSuffix(rest, "/")
	raw := strings.Split(rest, "/")
	out := make([]string, len(raw))
	for i, s := range raw {
		u, err := url.PathUnescape(s)
		if err != nil {
			return nil, false
		}
		out[i] = u
	}
	return out, true
}

func (rt route) match(segs []string) (params, bool) {
	if len(segs) != len(rt.pattern) {
		return nil, false
	}
	p := params{}
	for i, pat := range rt.pattern {
		if name, ok := strings.CutPrefix(pat, "{"); ok {
			p[strings.TrimSuffix(name, "}")] = segs[i]
			continue
		}
		if pat != segs[i] {
			return nil, false
		}
	}
	return p, true
}

// withActor records who makes a change and why: the X-Ferry-Actor header, or
// "api@" and the client's address.
func withActor(r *http.Request) context.Context {
	return registry.WithActor(r.Context(), actorName(r), r.Header.Get(mgmtapi.HeaderReason))
}

func actorName(r *http.Request) string {
	// An authenticated caller is the actor; the header a client sends is only its
	// own account of who is behind it, so it is kept beside, never instead.
	if id, ok := auth.FromContext(r.Context()); ok && id.Via != auth.ViaAnonymous {
		if who := r.Header.Get(mgmtapi.HeaderActor); who != "" {
			return id.String() + " (" + who + ")"
		}
		return id.String()
	}
	if who := r.Header.Get(mgmtapi.HeaderActor); who != "" {
		return who
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return "api@" + host
}

// Intercept serves every path under /api/v1/ itself and hands the rest to next. Mount
// the handler this way, around the root mux, rather than as a mux pattern: a ServeMux
// cleans a path before it matches, answering "/api/v1/models/x/../mlp" with a 307 to
// "/api/v1/models/mlp" that keeps the method, so a DELETE of the refused name
// "x/../mlp" would come back as a DELETE of mlp.
func (h *Handler) Intercept(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.EscapedPath(), mgmtapi.Prefix) {
			h.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}
