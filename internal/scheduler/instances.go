package scheduler

// Instances are the scheduler's instances, for capabilities a caller reaches besides
// Execute: core asks them whether they explain their predictions exactly (its
// ExactExplainer). The caller must neither Execute nor Close them; the slice is the
// scheduler's own and must not be changed.
func (s *Scheduler) Instances() []Instance { return s.instances }
