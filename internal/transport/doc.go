// Package transport is the room for wire protocols: each subfolder decodes its wire
// format into core's request types, calls core.Server, and encodes the answer; none
// talks to the repository, the scheduler or a backend (archtest holds it). http serves
// the V2 REST protocol, grpc the V2 gRPC service. A new protocol (the OpenAI-compatible
// API, a management API, a streaming lane) is a new subfolder whose handler or service
// cmd/ferry mounts next to the others.
package transport
