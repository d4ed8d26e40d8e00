package remote

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/internal/modelconfig"
)

// Defaults for the parameters a config leaves out.
const (
	DefaultTimeout         = 30 * time.Second
	DefaultRetries         = 2
	DefaultRetryBudget     = 0.2
	DefaultBreakerFailures = 5
	DefaultBreakerCooldown = 5 * time.Second
	DefaultHealthInterval  = 5 * time.Second
)

// Protocol is how the upstream is spoken to.
type Protocol string

// The protocols a url may name.
const (
	REST Protocol = "http" // V2 REST with the binary tensor data extension
	GRPC Protocol = "grpc" // V2 gRPC with raw tensor contents
)

// Options are a remote model's settings, read from its config's parameters.
type Options struct {
	URL      string   // as written in the config, for messages
	Protocol Protocol // REST or GRPC
	Addr     string   // host:port
	Model    string   // the upstream's model name
	Version  string   // the upstream's version; "" lets the upstream pick

	Timeout     time.Duration // per try
	Retries     int           // extra tries after a retryable failure
	RetryBudget float64       // extra tries (retries and hedges) per first try, over time
	Hedge       Hedge

	BreakerFailures int           // consecutive failures that open the circuit; 0 never opens it
	BreakerCooldown time.Duration // how long the circuit stays open before a probe

	HealthInterval time.Duration // upstream readiness checks; 0 turns them off

	// TLS, when set, secures the connection (https:// and grpcs:// urls): the system's
	// roots or tls_ca_file are trusted, tls_server_name overrides the name checked, and
	// tls_cert_file with tls_key_file present a client certificate (mutual TLS).
	TLS *tls.Config
}

// Hedge says when a second try is sent while the first has not answered.
type Hedge struct {
	Quantile float64       // > 0: after this quantile of recent try latencies (0.95 for "p95")
	After    time.Duration // > 0: after this fixed delay
}

// Off reports whether hedging is disabled.
func (h Hedge) Off() bool { return h.Quantile == 0 && h.After == 0 }

func (h Hedge) String() string {
	switch {
	case h.Quantile > 0:
		return "p" + strconv.FormatFloat(h.Quantile*100, 'f', -1, 64)
	case h.After > 0:
		return h.After.String()
	}
	return "off"
}

// knownParams are the parameters a remote model's config may set.
var knownParams = []string{"url", "model_name", "model_version", "timeout", "retries", "retry_budget",
	"hedge", "breaker_failures", "breaker_cooldown", "health_interval",
	"tls_ca_file", "tls_server_name", "tls_cert_file", "tls_key_file"}

// ParseOptions reads a remote model's parameters; model is the model's own name, the
// upstream's by default. Every problem is reported, each naming its parameter.
func ParseOptions(cfg *inference.ModelConfig) (Options, error) {
	p := map[string]string{}
	var errs []error
	for k, v := range cfg.GetParameters() {
		if !slices.Contains(knownParams, k) {
			errs = append(errs, modelconfig.ParamError(k, "not a remote backend parameter (known: %s)", strings.Join(knownParams, ", ")))
			continue
		}
		p[k] = strings.TrimSpace(v.GetStringValue())
	}
	o := Options{Model: cfg.GetName(), Timeout: DefaultTimeout, Retries: DefaultRetries, RetryBudget: DefaultRetryBudget,
		BreakerFailures: DefaultBreakerFailures, BreakerCooldown: DefaultBreakerCooldown, HealthInterval: DefaultHealthInterval}
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	add(o.parseURL(p["url"]))
	if v := p["model_name"]; v != "" {
		o.Model = v
	}
	if v := p["model_version"]; v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err != nil || n < 1 {
			add(modelconfig.ParamError("model_version", "must be a version number, got %q", v))
		}
		o.Version = v
	}
	var err error
	o.Timeout, err = modelconfig.ParamDuration(cfg, "timeout", o.Timeout, false)
	add(err)
	o.Retries, err = modelconfig.ParamInt(cfg, "retries", o.Retries, 0, 100)
	add(err)
	o.BreakerFailures, err = modelconfig.ParamInt(cfg, "breaker_failures", o.BreakerFailures, 0, 100)
	add(err)
	o.BreakerCooldown, err = modelconfig.ParamDuration(cfg, "breaker_cooldown", o.BreakerCooldown, false)
	add(err)
	o.HealthInterval, err = modelconfig.ParamDuration(cfg, "health_interval", o.HealthInterval, true)
	add(err)
	if v, ok := p["retry_budget"]; ok {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 || f > 1 {
			add(modelconfig.ParamError("retry_budget", "must be a fraction between 0 and 1, got %q", v))
		}
		o.RetryBudget = f
	}
	if v, ok := p["hedge"]; ok {
		h, err := parseHedge(v)
		add(err)
		o.Hedge = h
	}
	add(o.parseTLS(p))
	return o, errors.Join(errs...)
}

func (o *Options) parseURL(s string) error {
	if s == "" {
		return modelconfig.ParamError("url", "must name the upstream, as http://host:port or https://host:port (V2 REST) or grpc://host:port or grpcs://host:port (V2 gRPC)")
	}
	o.URL = s
	u, err := url.Parse(s)
	if err != nil {
		return modelconfig.ParamCause("url", err)
	}
	switch u.Scheme {
	case "http", "https":
		o.Protocol = REST
	case "grpc", "grpcs":
		o.Protocol = GRPC
	default:
		return modelconfig.ParamError("url", "scheme %q: want http:// or https:// (V2 REST), grpc:// or grpcs:// (V2 gRPC)", u.Scheme)
	}
	if u.Scheme == "https" || u.Scheme == "grpcs" {
		o.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.User != nil {
		return modelconfig.ParamError("url", "%q: give only scheme, host and port (the V2 paths are fixed)", s)
	}
	if _, port, err := net.SplitHostPort(u.Host); err != nil || port == "" {
		return modelconfig.ParamError("url", "%q: needs host:port", s)
	}
	o.Addr = u.Host
	return nil
}

// parseTLS reads the tls_* parameters into o.TLS; they need an https:// or grpcs:// url.
func (o *Options) parseTLS(p map[string]string) error {
	var set []string
	for _, k := range []string{"tls_ca_file", "tls_server_name", "tls_cert_file", "tls_key_file"} {
		if p[k] != "" {
			set = append(set, k)
		}
	}
	if len(set) == 0 {
		return nil
	}
	if o.TLS == nil {
		if o.URL == "" {
			return nil // the url's own error says what is wrong
		}
		return paramsError(set, nil, "TLS settings need an https:// or grpcs:// url, not %q", o.URL)
	}
	var errs []error
	o.TLS.ServerName = p["tls_server_name"]
	if f := p["tls_ca_file"]; f != "" {
		pem, err := os.ReadFile(f)
		if err != nil {
			errs = append(errs, modelconfig.ParamCause("tls_ca_file", err))
		} else if pool := x509.NewCertPool(); !pool.AppendCertsFromPEM(pem) {
			errs = append(errs, modelconfig.ParamError("tls_ca_file", "%s holds no PEM certificate", f))
		} else {
			o.TLS.RootCAs = pool
		}
	}
	cert, key := p["tls_cert_file"], p["tls_key_file"]
	switch {
	case cert == "" && key == "":
	case cert == "" || key == "":
		errs = append(errs, paramsError([]string{"tls_cert_file", "tls_key_file"}, nil, "a client certificate needs both"))
	default:
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			errs = append(errs, paramsError([]string{"tls_cert_file", "tls_key_file"}, err, "%v", err))
		} else {
			o.TLS.Certificates = []tls.Certificate{pair}
		}
	}
	return errors.Join(errs...)
}

func parseHedge(v string) (Hedge, error) {
	switch {
	case v == "" || v == "off":
		return Hedge{}, nil
	case strings.HasPrefix(v, "p"):
		q, err := strconv.ParseFloat(v[1:], 64)
		if err != nil || q <= 0 || q >= 100 {
			return Hedge{}, modelconfig.ParamError("hedge", "a quantile must be p1 .. p99.9, got %q", v)
		}
		return Hedge{Quantile: q / 100}, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return Hedge{}, modelconfig.ParamError("hedge", `must be "off", a quantile of recent latencies ("p95") or a delay ("20ms"), got %q`, v)
	}
	return Hedge{After: d}, nil
}

// paramsError is a problem with parameters that go together, naming each; cause may
// be nil.
func paramsError(keys []string, cause error, format string, args ...any) error {
	fields := make([]string, len(keys))
	for i, k := range keys {
		fields[i] = "parameters[" + strconv.Quote(k) + "]"
	}
	return &modelconfig.FieldError{Field: strings.Join(fields, ", "), Reason: fmt.Sprintf(format, args...), Err: cause}
}
