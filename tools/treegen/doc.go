// Package treegen writes random gradient-boosted tree ensembles as XGBoost JSON
// models, in pure Go, for tests and benchmarks that need a realistic tree model on
// disk (the hand-written fixtures of internal/backend/trees are tiny).
//
// A [Forest] also predicts by walking its own trees with XGBoost's rules (x <
// threshold goes left, compared as float32; NaN takes the node's default
// direction), so tests can check a backend against an implementation that shares
// no code with it. Generation is deterministic for a given seed.
package treegen
