package main

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/ferryml/ferry/internal/netguard"
	"github.com/ferryml/ferry/internal/transport/middleware"
)

// hardening.go holds the serve flags that close known holes (issue 17): what a
// repository load request may upload, which python interpreters a config may name,
// where outbound connections may go, and the limits on how slowly and how much a
// client may send. Its zero value (the tests' serveConfig) refuses uploads, allows the
// default interpreter only, denies metadata addresses, and sets no body budget or rate.
type hardeningConfig struct {
	allowLoadFiles     bool
	loadFilesDir       string
	allowPythonUploads bool
	pythonInterpreters []string

	bodyBudget   byteSize      // in-flight request bytes; 0: none
	bodyGrace    time.Duration // time any body gets
	bodyMinRate  byteSize      // bytes/s after that; 0: no body deadline
	maxHeaderKiB int           // request header bytes / 1024; 0: net/http's 1 MiB

	grpcMaxStreams   uint32        // concurrent streams per connection; 0: grpc-go's (unbounded)
	grpcKeepaliveMin time.Duration // fastest client keepalive pings allowed; 0: grpc-go's 5 min

	denyPrivateUpstreams bool
	upstreamAllow        []string
	upstreamDeny         []string
	guard                *netguard.Policy // built by validate
}

func (h *hardeningConfig) addFlags(f *pflag.FlagSet) {
	f.BoolVar(&h.allowLoadFiles, "allow-load-files", false, `let repository load requests carry their own "config" and "file:<path>" parameters (off: refused with 400)`)
	f.StringVar(&h.loadFilesDir, "load-files-dir", "", "folder a load request's files are written under, one fresh folder per request (default: the system's temporary folder)")
	f.BoolVar(&h.allowPythonUploads, "allow-python-uploads", false, "with --allow-load-files, also load uploaded files on the python backend, which runs them as code")
	f.StringSliceVar(&h.pythonInterpreters, "python-interpreters", nil, "interpreters a model's python_interpreter parameter may name, paths or names on PATH (default: --python-interpreter only)")
	h.bodyBudget = 1 << 30
	f.Var(&h.bodyBudget, "max-inflight-body-bytes", "request body bytes all V2 requests may hold at once; a request whose body does not fit is answered 503 with Retry-After before it is read (0: no budget)")
	f.DurationVar(&h.bodyGrace, "body-read-grace", 10*time.Second, "time any request body gets to arrive, before --body-min-rate applies")
	h.bodyMinRate = 64 << 10
	f.Var(&h.bodyMinRate, "body-min-rate", "slowest a request body may arrive after --body-read-grace, in bytes per second, e.g. 64KiB (0: no body deadline)")
	f.IntVar(&h.maxHeaderKiB, "max-header-kib", 64, "largest request header block, in KiB")
	f.Uint32Var(&h.grpcMaxStreams, "grpc-max-concurrent-streams", 1024, "concurrent gRPC streams per connection (0: unbounded)")
	f.DurationVar(&h.grpcKeepaliveMin, "grpc-keepalive-min-time", 10*time.Second, "shortest interval between a client's keepalive pings; faster clients are disconnected")
	f.BoolVar(&h.denyPrivateUpstreams, "deny-private-upstreams", false, "refuse remote upstreams and S3 endpoints on private and loopback addresses (metadata and link-local are always refused)")
	f.StringSliceVar(&h.upstreamAllow, "upstream-allow", nil, "addresses or CIDRs upstreams and S3 endpoints may use even when denied otherwise (not link-local)")
	f.StringSliceVar(&h.upstreamDeny, "upstream-deny", nil, "addresses or CIDRs upstreams and S3 endpoints must not use")
}

// validate checks the flags and builds the outbound policy.
func (h *hardeningConfig) validate() []error {
	var errs []error
	allow, err := netguard.ParsePrefixes(h.upstreamAllow)
	if err != nil {
		errs = append(errs, fmt.Errorf("--upstream-allow: %w", err))
	}
	deny, err := netguard.ParsePrefixes(h.upstreamDeny)
	if err != nil {
		errs = append(errs, fmt.Errorf("--upstream-deny: %w", err))
	}
	h.guard = &netguard.Policy{DenyPrivate: h.denyPrivateUpstreams, Allow: allow, Deny: deny}
	if h.allowPythonUploads && !h.allowLoadFiles {
		errs = append(errs, errors.New("--allow-python-uploads needs --allow-load-files"))
	}
	if h.loadFilesDir != "" {
		if !h.allowLoadFiles {
			errs = append(errs, errors.New("--load-files-dir needs --allow-load-files"))
		} else if st, err := os.Stat(h.loadFilesDir); err != nil || !st.IsDir() {
			errs = append(errs, fmt.Errorf("--load-files-dir %s: not a folder", h.loadFilesDir))
		} else if abs, err := filepath.Abs(h.loadFilesDir); err == nil {
			h.loadFilesDir = abs
		}
	}
	if h.bodyBudget < 0 || h.bodyMinRate < 0 || h.bodyGrace < 0 || h.maxHeaderKiB < 0 || h.grpcKeepaliveMin < 0 {
		errs = append(errs, errors.New("--max-inflight-body-bytes, --body-min-rate, --body-read-grace, --max-header-kib and --grpc-keepalive-min-time must be >= 0"))
	}
	return errs
}

// wrapHTTP puts the hardening layers around the HTTP root; the Ferry-Timeout header
// becomes a V2 request's deadline. The management API (/api/)
// answers its own paths and bounds its own bodies (a pushed artifact may be larger than
// the budget), so dot segments and the budget apply to the other routes; the body rate
// applies to all.
func (h hardeningConfig) wrapHTTP(root http.Handler) http.Handler {
	v2 := middleware.Chain(root, middleware.RejectDotSegments, middleware.BodyBudget(int64(h.bodyBudget), time.Second), middleware.Deadline)
	rated := middleware.ReadDeadline(middleware.BodyRate{Grace: h.bodyGrace, MinRate: int64(h.bodyMinRate)})
	return rated(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/api/") {
			root.ServeHTTP(w, r)
			return
		}
		v2.ServeHTTP(w, r)
	}))
}

// httpServer sets the header limit. No WriteTimeout: an inference may take long and
// responses stream (SSE); a stuck client is bounded by TCP and the drain timeout.
func (h hardeningConfig) httpServer(s *http.Server) *http.Server {
	if h.maxHeaderKiB > 0 {
		s.MaxHeaderBytes = h.maxHeaderKiB << 10
	}
	return s
}

// grpcOptions bound streams per connection and enforce a keepalive ping rate (a client
// pinging faster is sent GOAWAY), beside the message sizes the V2 service sets.
func (h hardeningConfig) grpcOptions() []grpc.ServerOption {
	var opts []grpc.ServerOption
	if h.grpcMaxStreams > 0 {
		opts = append(opts, grpc.MaxConcurrentStreams(h.grpcMaxStreams))
	}
	if h.grpcKeepaliveMin > 0 {
		opts = append(opts, grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: h.grpcKeepaliveMin, PermitWithoutStream: true}))
	}
	return opts
}
