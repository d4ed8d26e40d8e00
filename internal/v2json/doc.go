// Package v2json writes tensors in the KServe V2 JSON form: a tensor's elements as the
// flat "data" array, and JSON strings, appended straight from the tensors' little-endian
// bytes. It is the one writer the REST transport (responses), the load generator
// (requests) and tests share, so every datatype is spelled one way. It imports only
// tensor, so any layer may use it without breaking the one-way data flow.
//
// It also turns decoded V2 JSON values into tensor elements (AppendValue, Flatten) for
// the readers that work on decoded values: the load generator's data files and a remote
// upstream's typed answers.
//
// Where things go: the V2 JSON form of a new datatype or element form goes here; the
// REST transport's streaming decoder reads request bytes itself, for speed.
package v2json
