package scheduler

// Readier is implemented by an Instance whose ability to serve can change after it
// opened: a remote upstream that goes down, for one. Ready returns nil when the
// instance can take requests, else why not. It must be cheap and must not block: the
// repository calls it whenever it picks a version for a request.
type Readier interface {
	Ready() error
}

// Ready returns nil when the version can serve: some instance is ready, or its
// instances do not report readiness (they are ready once open). Otherwise it returns
// the first instance's reason.
func (s *Scheduler) Ready() error {
	var first error
	for _, in := range s.instances {
		r, ok := in.(Readier)
		if !ok {
			return nil
		}
		err := r.Ready()
		if err == nil {
			return nil
		}
		if first == nil {
			first = err
		}
	}
	return first
}
