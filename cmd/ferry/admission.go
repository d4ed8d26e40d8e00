package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/ferryml/ferry/internal/admission"
	"github.com/ferryml/ferry/internal/auth"
	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/monitor/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
)

// admissionConfig is what `ferry serve` reads about rate limits, quotas and load
// shedding (internal/admission).
type admissionConfig struct {
	shed        admission.Shed
	shedOn      bool
	limits      limitsFile
	rateDefault float64 // --rate-limit-default: requests/s of every tenant without limits of its own
}

func (a *admissionConfig) addFlags(f *pflag.FlagSet) {
	def := admission.DefaultShed()
	a.shed = def
	f.BoolVar(&a.shedOn, "shed", true, "load shedding: an adaptive concurrency limit per model version refuses what would break the latency objective (503); false: off, unless a model's shed parameter turns it on")
	f.DurationVar(&a.shed.Objective, "shed-latency-objective", def.Objective, "load shedding: admitted requests' latency objective; the limit backs off past half of it (a model's shed_latency_objective parameter overrides it)")
	f.IntVar(&a.shed.MinLimit, "shed-min-limit", def.MinLimit, "load shedding: the concurrency limit never goes below this")
	f.IntVar(&a.shed.MaxLimit, "shed-max-limit", def.MaxLimit, "load shedding: the concurrency limit never goes above this")
	f.IntVar(&a.shed.InitialLimit, "shed-initial-limit", def.InitialLimit, "load shedding: each model version's concurrency limit at its first request")
	f.Var(&a.limits, "rate-limits", "JSON file of per-tenant and per-key rate limits, concurrency limits and quotas (docs/serve.md#rate-limits-and-load-shedding)")
	f.Float64Var(&a.rateDefault, "rate-limit-default", 0, "requests/s of each tenant the --rate-limits file gives no limits of its own (0: none)")
}

func (a *admissionConfig) validate() []error {
	var errs []error
	if !(a.rateDefault >= 0) {
		errs = append(errs, fmt.Errorf("--rate-limit-default: must be >= 0, got %v", a.rateDefault))
	}
	if _, err := admission.New(a.options(nil, nil)); err != nil {
		errs = append(errs, fmt.Errorf("--shed-* or --rate-limit-default: %w", err))
	}
	return errs
}

// options are the controller's options; validate built a controller from the same.
func (a *admissionConfig) options(obs admission.Observer, log *slog.Logger) admission.Options {
	lim := a.limits.cfg
	if a.rateDefault > 0 {
		lim.Default.RequestsPerSecond = a.rateDefault
	}
	shed := a.shed
	shed.Off = !a.shedOn
	if a.shed == (admission.Shed{}) { // not from flags (tests build serveConfig): the defaults, on
		shed = admission.DefaultShed()
	}
	return admission.Options{Limits: &lim, Shed: shed, Observer: obs, Logger: log}
}

// admissionParts are the built controller and its metrics.
type admissionParts struct {
	ctl *admission.Controller
	obs *metrics.Admission
}

// build makes the controller from the settings validate accepted.
func (a *admissionConfig) build(log *slog.Logger) admissionParts {
	p := admissionParts{obs: metrics.NewAdmission()}
	var err error
	if p.ctl, err = admission.New(a.options(p.obs, log)); err != nil {
		panic(fmt.Sprintf("admission settings passed validate, then: %v", err)) // a bug: validate checks the same options
	}
	return p
}

// core is the controller as core's Admission.
func (p admissionParts) core() core.Admission { return p.ctl }

func (p admissionParts) register(reg prometheus.Registerer) {
	reg.MustRegister(p.obs.Collectors(p.ctl.Limits)...)
}

// callerOf names a request's tenant and key for its rate limits: the identity
// authentication put in the context (a key's id, a token's subject); a request without
// one is the anonymous tenant "", whom the default limits govern.
func callerOf(ctx context.Context) (tenant, key string) {
	id, ok := auth.FromContext(ctx)
	if !ok || id.Via == auth.ViaAnonymous {
		return "", ""
	}
	return id.Tenant, id.Subject
}

// limitsFile is the --rate-limits flag: the file is read and checked when the flag is
// parsed, so a bad file stops `ferry serve` with the field named.
type limitsFile struct {
	path string
	cfg  admission.Config
}

func (l *limitsFile) String() string { return l.path }
func (l *limitsFile) Type() string   { return "file" }
func (l *limitsFile) Set(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	c, err := admission.DecodeConfig(f)
	if err != nil {
		return errors.Join(fmt.Errorf("%s", path), err)
	}
	l.path, l.cfg = path, *c
	return nil
}
