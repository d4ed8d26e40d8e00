// Package core is Ferry's one in-process serving API. Every transport (REST, gRPC, and
// later the batch and streaming lanes) decodes its wire format into an InferRequest and
// calls the same Server; core resolves the model version, checks the inputs against the
// model's configuration, hands the request to that version's scheduler and records
// statistics. It owns the error vocabulary transports map to status codes.
//
// Where things go: what every request passes through, whatever its transport (checks
// against the config, the response cache, ensembles, statistics), belongs here; what
// watches finished requests subscribes to the Tap (tap.go) from a package of its own;
// routing between versions (aliases, rollouts) will decide here, before the lease.
package core
