// Package backend is the room for engines: each subfolder runs one kind of model and
// implements scheduler.Instance without importing the scheduler, core, the repository
// or a transport (archtest holds it). onnx runs ONNX Runtime (the one cgo package),
// trees runs XGBoost and LightGBM models in Go, python runs a model.py in a child
// process, remote forwards to another V2 server, and backendtest is the conformance
// suite every engine passes. A new engine is a new subfolder plus one row in cmd/ferry's
// table of backends (repository.Backends), the only place that lists them.
package backend
