// Package otlptest runs a real OTLP trace receiver for tests: the OTLP/gRPC
// TraceService on 127.0.0.1 and the OTLP/HTTP endpoint (protobuf bodies), both
// collecting the spans exporters send, so tests check what a collector would get.
package otlptest
