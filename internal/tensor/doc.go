// Package tensor is Ferry's leaf data type: V2 datatypes, shapes and tensors whose
// elements are held as raw little-endian bytes (the layout of the V2 binary extension,
// gRPC raw contents and ONNX Runtime buffers), so transports and backends exchange
// tensors without converting element by element. It imports no other Ferry package.
package tensor
