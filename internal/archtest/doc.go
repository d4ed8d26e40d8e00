// Package archtest holds no code: its tests enforce the import rules of DESIGN.md, so the
// one-way data flow (transport -> core -> scheduler -> backend) cannot erode silently,
// and that transports mount on cmd/ferry's one HTTP root and gRPC server instead of
// building a listener, a server or a mux of their own (a source scan, serve_test.go).
package archtest
