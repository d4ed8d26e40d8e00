package remote

import "path/filepath"

// UpstreamStats is what one open upstream did so far.
type UpstreamStats struct {
	Model, Version         string
	Tries, Retries, Hedges int64
	CircuitOpen            bool
}

// Stats reads the counters of every open upstream (the request path bumps them);
// monitor/metrics exports them.
func (b *Backend) Stats() []UpstreamStats {
	b.mu.Lock()
	ups := make([]*upstream, 0, len(b.shared))
	for _, u := range b.shared {
		ups = append(ups, u)
	}
	b.mu.Unlock()
	out := make([]UpstreamStats, 0, len(ups))
	for _, u := range ups {
		out = append(out, UpstreamStats{Model: u.model, Version: u.version, Tries: u.tries.Load(), Retries: u.retries.Load(),
			Hedges: u.hedges.Load(), CircuitOpen: u.breaker.snapshot() == open})
	}
	return out
}

// versionOf names the version from the key Open is given (the version folder).
func versionOf(key string) string { return filepath.Base(key) }
