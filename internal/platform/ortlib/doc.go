// Package ortlib finds the ONNX Runtime shared library for the server and the tests: one
// search order, so a binary and `go test` in any package agree on which library they load.
package ortlib
