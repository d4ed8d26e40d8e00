// Package mgmt is Ferry's management API: JSON routes under /api/v1/ for the model
// registry (models, versions, pushes, stages, aliases), endpoints' traffic policies,
// rollouts and the audit trail (issue 16, point 5). It is kept apart from the
// inference routes so an authentication layer can guard it as one group.
//
// Where things go: handler.go declares Service (what the routes need, implemented by
// cmd/ferry's wiring around the registry, the router table and the rollout controller),
// Options, New and the route table with its path matching; errors.go is the one
// mapping from errors to statuses and the JSON reading and writing helpers; models.go
// serves models and the audit trail; versions.go versions, pushes and stages, and
// pushquery.go the push metadata given as query parameters; deploy.go aliases and
// endpoints; rollouts.go rollouts; mgmttest/ a real Service for tests. The wire types live in
// internal/mgmtapi, shared with internal/mgmtclient.
//
// Paths are matched segment by segment on the escaped path, each segment unescaped
// on its own, so "models/a%2Fb" is the model name "a/b" (which the registry refuses
// by name) and never the route "models/a/b". The package never listens: cmd/ferry
// mounts the Handler on its one HTTP root, through Handler.Intercept, because a
// ServeMux would clean ".." out of a path into a redirect to another route.
package mgmt
