// Package mgmtapi holds the wire types of Ferry's management API (/api/v1): the
// bodies the server (internal/transport/mgmt) writes and reads and the client
// (internal/mgmtclient) reads and writes, so both sides share one definition and
// cannot drift apart. Objects the API only passes through keep their own packages'
// types (registry.ModelVersion, router.Policy, rollout.Status and rollout.Change);
// this package adds the compositions (a model with its versions and aliases, a
// rollout with its history) and the request bodies.
//
// Where things go: types.go holds the response and request bodies; meta.go the push
// metadata and its strict decoder, shared by the header and multipart forms of a push.
// It imports only the packages whose types it composes (registry, router, rollout).
package mgmtapi
