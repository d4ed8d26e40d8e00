package main

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"

	"github.com/ferryml/ferry/internal/monitor/metrics"
	"github.com/ferryml/ferry/internal/repository"
)

// onDemandConfig holds the flags of on-demand mode (--model-control-mode on-demand).
type onDemandConfig struct {
	loadTimeout time.Duration
	budget      byteSize // 0: no budget
	idleUnload  time.Duration
}

func (c *onDemandConfig) addFlags(f *pflag.FlagSet) {
	f.DurationVar(&c.loadTimeout, "model-load-timeout", repository.DefaultLoadTimeout,
		"on-demand mode: how long a request waits for its model to load")
	f.Var(&c.budget, "memory-budget",
		"on-demand mode: memory the loaded models may hold, measured at load, e.g. 512MiB; least recently used idle models are unloaded to make room (0: no budget)")
	f.DurationVar(&c.idleUnload, "model-idle-unload", 0,
		"on-demand mode: unload a model no request has used for this long (0: never)")
}

func (c onDemandConfig) validate(mode string) []error {
	var errs []error
	if c.loadTimeout < 0 { // 0 (a config built in a test) takes the default
		errs = append(errs, fmt.Errorf("--model-load-timeout: must be > 0, got %s", c.loadTimeout))
	}
	if c.idleUnload < 0 {
		errs = append(errs, fmt.Errorf("--model-idle-unload: must be >= 0, got %s", c.idleUnload))
	}
	if mode != string(repository.ModeOnDemand) {
		if c.budget > 0 {
			errs = append(errs, fmt.Errorf("--memory-budget needs --model-control-mode on-demand"))
		}
		if c.idleUnload > 0 {
			errs = append(errs, fmt.Errorf("--model-idle-unload needs --model-control-mode on-demand"))
		}
	}
	return errs
}

// registerResident exports ferry_models_resident_bytes when the server has a budget.
func registerResident(reg prometheus.Registerer, c onDemandConfig, repo *repository.Repository) {
	if c.budget > 0 {
		reg.MustRegister(metrics.ResidentTotal(repo.ResidentBytes))
	}
}
