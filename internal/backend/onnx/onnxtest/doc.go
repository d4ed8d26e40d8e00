// Package onnxtest runs a package's tests with the process's one ONNX Runtime: its
// environment is process-wide and onnxruntime_go refuses a second one, so each test
// binary opens it once, in TestMain. Tests only.
package onnxtest
