// Package transport is the room for wire protocols: each subfolder decodes its wire
// format into core's request types, calls core.Server, and encodes the answer; none
// talks to the repository, the scheduler or a backend (archtest holds it). v2http serves
// the V2 REST protocol, v2grpc the V2 gRPC service; middleware holds the layers every
// route shares (request log, panic recovery, body limit). A transport never builds a
// listener or a server: it offers routes (v2http: Handler.Mount) or a service (v2grpc:
// Register), and cmd/ferry (routes.go) mounts them on its one HTTP root and one gRPC
// server. A new protocol (the OpenAI-compatible API, a management API, a streaming
// lane) is a new subfolder mounted the same way.
package transport
