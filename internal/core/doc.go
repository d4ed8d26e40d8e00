// Package core is Ferry's one in-process serving API. Every transport (REST, gRPC, and
// later the batch and streaming lanes) decodes its wire format into an InferRequest and
// calls the same Server; core resolves the model version, checks the inputs against the
// model's configuration, hands the request to that version's scheduler and records
// statistics. It owns the error vocabulary transports map to status codes.
package core
