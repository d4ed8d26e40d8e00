// Package grpcdeflate registers gRPC's "deflate" message compression, which grpc-go does
// not ship: Triton's clients (tritonclient's compression_algorithm, perf_analyzer's
// --grpc-compression-algorithm) offer it beside gzip. gRPC core's deflate is the zlib
// format (RFC 1950), so that is what this speaks. Import it for its side effect, with
// google.golang.org/grpc/encoding/gzip for gzip.
package grpcdeflate
