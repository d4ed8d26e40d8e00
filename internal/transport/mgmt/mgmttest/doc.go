// Package mgmttest provides a real mgmt.Service for tests of the management API, its
// client and the CLI: a registry (SQLite in the test's temporary folder) with its
// managed artifact store, a running rollout controller whose model loads succeed at
// once, and an in-memory policy table. It serves nothing itself; tests mount
// mgmt.New(svc, ...) on an httptest server.
package mgmttest
