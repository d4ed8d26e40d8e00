package core

import (
	"context"

	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/internal/scheduler"
)

// Repository is what core needs from the model repository: leases on loaded versions
// and the repository extension's operations. The repository package implements it.
type Repository interface {
	// Acquire leases a READY version ("" = the newest ready one). The caller must Release.
	// A repository that loads models on demand may block until the model is loaded, as
	// long as ctx allows.
	Acquire(ctx context.Context, model, version string) (*Lease, error)
	// Ready reports whether the version ("" = any) is READY, without loading anything:
	// a readiness probe must not pull an unloaded model in. Unknown models are an error.
	Ready(model, version string) (bool, error)
	// Versions lists the model's READY versions, ascending.
	Versions(model string) []string
	Index(readyOnly bool) []ModelIndexEntry
	// Healthy reports whether every loaded model has all its versions READY.
	Healthy() bool
	Load(ctx context.Context, model string, opts LoadOptions) error
	Unload(ctx context.Context, model string) error
}

// Lease keeps one loaded model version from being unloaded while a request uses it.
type Lease struct {
	Model     string
	Version   string
	Config    *inference.ModelConfig // complete (auto-completed) and immutable
	Scheduler *scheduler.Scheduler
	release   func()
}

// NewLease is called by a Repository; release runs once, on Release.
func NewLease(model, version string, cfg *inference.ModelConfig, s *scheduler.Scheduler, release func()) *Lease {
	return &Lease{Model: model, Version: version, Config: cfg, Scheduler: s, release: release}
}

// Release returns the lease. Calling it twice is a bug the second call ignores.
func (l *Lease) Release() {
	if r := l.release; r != nil {
		l.release = nil
		r()
	}
}
