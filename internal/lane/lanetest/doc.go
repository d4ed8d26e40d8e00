// Package lanetest builds a real core for the lanes' tests: a model repository folder
// loaded with ONNX Runtime and the trees engine, as `ferry serve` would load it, with no
// listener in front. Only one ONNX Runtime may exist per process, so a test binary
// opens one Core in TestMain and shares it.
package lanetest
