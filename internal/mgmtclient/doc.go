// Package mgmtclient is the client of Ferry's management API (/api/v1), used by the
// ferry CLI: one method per route, returning the types the server sends
// (registry.ModelVersion, router.Policy, rollout.Status and the compositions of
// internal/mgmtapi). A failure the server answered is an *Error carrying the status
// and the server's message.
//
// Where things go: client.go holds New, the request plumbing and Error; routes.go the
// one-method-per-route API. It is a client only: it imports nothing of core, the
// repository or the transports (archtest holds it).
package mgmtclient
