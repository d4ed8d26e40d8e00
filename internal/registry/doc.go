// Package registry is Ferry's model registry: registered models, their numbered
// versions, aliases, stages with a transition history, an audit trail, and the
// opaque endpoint and rollout state other packages keep in it. It uses MLflow's
// Model Registry names so its users recognise them.
//
// Where things go: store.go declares the Store interface and Open/OpenDir;
// dialect.go holds the only differences between SQLite and PostgreSQL
// (driver, placeholders, identity columns, error codes); migrate.go and
// migrations/*.sql version the schema; models.go, versions.go, aliases.go,
// stages.go, state.go, keys.go (tenants, API keys) and audit.go implement the Store methods on one SQL
// code path; names.go validates names; digest.go hashes artifact folders;
// artifacts.go is the managed artifact store (tar uploads); import.go turns a
// Triton-style repository into models and versions.
//
// Every change runs in one transaction that also writes an audit row; who made
// it and why come from the context (WithActor). SQLite (modernc.org/sqlite,
// pure Go) is the default, in WAL mode with a busy timeout and foreign keys on;
// PostgreSQL (pgx through database/sql, so both stores share every query) is
// for several replicas. The package is a leaf of the control plane: it never
// imports core, scheduler, transport, backend or repository; the router and the
// repository read from it.
package registry
