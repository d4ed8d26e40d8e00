package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"time"

	oklog "github.com/oklog/run"
	"github.com/spf13/pflag"
)

// addTritonFlags adds the flags whose names and forms follow tritonserver's, so that a
// Triton command line works unchanged where Ferry does the same thing. A tritonserver
// flag not here is refused as unknown (cobra names it) rather than silently ignored.
func (c *serveConfig) addTritonFlags(f *pflag.FlagSet) {
	if c.pollInterval == 0 {
		c.pollInterval = 15 * time.Second
	}
	f.Var((*seconds)(&c.pollInterval), "repository-poll-interval", "how often poll mode rescans the repository, in seconds (15) or as a duration (15s); on-demand mode: re-reads an object store and unloads models whose files changed")
	f.Var((*seconds)(&c.pollInterval), "repository-poll-secs", "tritonserver's name for --repository-poll-interval")
	f.StringVar(&c.httpAddr, "http-address", "", "address the V2 REST listener binds (default: --host)")
	f.StringVar(&c.grpcAddr, "grpc-address", "", "address the V2 gRPC listener binds (default: --host)")
	f.Var(&optionalPort{&c.metricsPort, &c.metricsOn}, "metrics-port", "also serve /metrics on this port, as tritonserver does at 8002 (0 picks a free port; default: /metrics only on the HTTP port)")
	f.StringVar(&c.metricsAddr, "metrics-address", "", "address the --metrics-port listener binds (default: the HTTP listener's)")
	// tritonserver exits by default; Ferry keeps serving the models that loaded and says
	// which failed (index, log, and readiness with --strict-readiness), as it always has.
	f.BoolVar(&c.exitOnError, "exit-on-error", false, "exit at start, naming them, when any startup model fails to load (tritonserver's default is true; here a broken model is reported in the index and by readiness, and the others serve)")
	f.BoolVar(&c.noAutoFill, "disable-auto-complete-config", false, "fill nothing in from model files: a model loads only when config.pbtxt states its platform or backend and every input and output with data_type and dims")
}

// seconds is --repository-poll-interval: tritonserver takes whole seconds
// (--repository-poll-secs 15), Go users write durations (15s, 500ms); both are read.
type seconds time.Duration

func (s *seconds) Set(v string) error {
	d, err := parseSeconds(v)
	if err != nil {
		return err
	}
	*s = seconds(d)
	return nil
}

func (s *seconds) String() string { return time.Duration(*s).String() }
func (s *seconds) Type() string   { return "seconds" }

func parseSeconds(v string) (time.Duration, error) {
	var d time.Duration
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n > math.MaxInt64/int64(time.Second) {
			return 0, fmt.Errorf("%d seconds is too long", n)
		}
		d = time.Duration(n) * time.Second
	} else if d, err = time.ParseDuration(v); err != nil {
		return 0, fmt.Errorf("%q: want whole seconds (15) or a duration (15s, 500ms)", v)
	}
	if d <= 0 {
		return 0, fmt.Errorf("%q: must be more than 0", v)
	}
	return d, nil
}

// optionalPort is a port flag whose absence means "no listener" (--metrics-port): an
// int alone would need a sentinel, and 0 already means "pick a free port".
type optionalPort struct {
	port *int
	set  *bool
}

func (p *optionalPort) Set(v string) error {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q: want a port number, 0 to 65535 (0 picks a free port)", v)
	}
	*p.port, *p.set = n, true
	return nil
}

func (p *optionalPort) String() string {
	if p.set == nil || !*p.set {
		return ""
	}
	return strconv.Itoa(*p.port)
}

func (p *optionalPort) Type() string { return "port" }

// bindAddr is where a listener binds: its own --*-address, else --host.
func (c serveConfig) bindAddr(own string, port int) string {
	if own == "" {
		own = c.host
	}
	return net.JoinHostPort(own, strconv.Itoa(port))
}

// listenMetrics opens the separate /metrics listener when --metrics-port asks for one
// (Triton serves its metrics apart, at 8002 by default). Its address defaults to the
// HTTP listener's, as tritonserver's --metrics-address does.
func (s *server) listenMetrics(metrics http.Handler) error {
	if !s.cfg.metricsOn {
		return nil
	}
	own := s.cfg.metricsAddr
	if own == "" {
		own = s.cfg.httpAddr
	}
	ln, err := net.Listen("tcp", s.cfg.bindAddr(own, s.cfg.metricsPort))
	if err != nil {
		return fmt.Errorf("metrics listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics)
	s.metricsLn = ln
	s.metricsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	return nil
}

// addMetrics serves the metrics listener, if any, in g. Added after the transports, so
// it stops last: Prometheus can still scrape while requests drain.
func (s *server) addMetrics(g *oklog.Group) {
	if s.metricsLn == nil {
		return
	}
	g.Add(func() error {
		if err := s.metricsSrv.Serve(s.metricsLn); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}, func(error) {
		ctx, done := context.WithTimeout(context.Background(), time.Second)
		defer done()
		s.metricsSrv.Shutdown(ctx) // a scrape in progress gets a second; nothing else is lost
	})
}

// metricsAddr is the separate metrics listener's address for the startup log, or "".
func (s *server) metricsAddr() string {
	if s.metricsLn == nil {
		return ""
	}
	return s.metricsLn.Addr().String()
}
