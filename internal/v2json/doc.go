// Package v2json writes tensors in the KServe V2 JSON form: a tensor's elements as the
// flat "data" array, and JSON strings, appended straight from the tensors' little-endian
// bytes. It is the one writer the REST transport (responses), the load generator
// (requests) and tests share, so every datatype is spelled one way. It imports only
// tensor, so any layer may use it without breaking the one-way data flow.
//
// Where things go: the V2 JSON writing of a new datatype or element form goes here;
// reading V2 JSON stays with its reader (the REST transport's streaming decoder).
package v2json
