package registry

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Store is the registry. Both implementations (SQLite, PostgreSQL) run the
// same queries and pass the same tests. Every method that changes something
// runs in one transaction that also writes an audit row, with the actor and
// reason of WithActor. Methods are safe for concurrent use.
type Store interface {
	CreateModel(ctx context.Context, m RegisteredModel) (RegisteredModel, error)
	Model(ctx context.Context, name string) (RegisteredModel, error)
	Models(ctx context.Context) ([]RegisteredModel, error)
	// UpdateModel replaces the description and tags of an existing model.
	UpdateModel(ctx context.Context, m RegisteredModel) (RegisteredModel, error)
	// DeleteModel removes the model with its versions, aliases and stage history.
	DeleteModel(ctx context.Context, name string) error

	// CreateVersion registers a version. Version 0 asks for max+1; a positive
	// Version (Import's folder numbers) is used as given, ErrExists if taken.
	CreateVersion(ctx context.Context, v ModelVersion) (ModelVersion, error)
	Version(ctx context.Context, model string, version int64) (ModelVersion, error)
	Versions(ctx context.Context, model string) ([]ModelVersion, error)

	// SetAlias points alias at version, creating or moving it atomically.
	SetAlias(ctx context.Context, model, alias string, version int64) error
	DeleteAlias(ctx context.Context, model, alias string) error
	// ResolveAlias returns the version a label names: an alias, "latest" (the
	// highest version) or a version number that exists.
	ResolveAlias(ctx context.Context, model, label string) (int64, error)
	Aliases(ctx context.Context, model string) (map[string]int64, error)

	// TransitionStage moves a version to stage to and records it in the history.
	// With archiveExisting, other versions in the target stage (Staging or
	// Production) move to Archived in the same transaction (MLflow's
	// archive_existing_versions).
	TransitionStage(ctx context.Context, model string, version int64, to Stage, archiveExisting bool) (ModelVersion, error)
	// StageHistory lists a version's transitions, oldest first (version 0: all of the model's).
	StageHistory(ctx context.Context, model string, version int64) ([]StageChange, error)

	Audit(ctx context.Context, f AuditFilter) ([]AuditEntry, error)

	// SaveEndpoint stores an endpoint's traffic policy (JSON owned by the router).
	SaveEndpoint(ctx context.Context, name string, policy []byte) error
	Endpoints(ctx context.Context) (map[string][]byte, error)
	// SaveRollout upserts an endpoint's rollout status and, if event is non-nil,
	// appends it to the endpoint's history, in one transaction with its audit row.
	SaveRollout(ctx context.Context, endpoint string, status []byte, event []byte) error
	Rollouts(ctx context.Context) (map[string][]byte, error)
	// RolloutHistory returns the newest limit events (all if limit <= 0), newest last.
	RolloutHistory(ctx context.Context, endpoint string, limit int) ([][]byte, error)

	// CreateTenant adds a tenant (ErrExists if it exists); Tenants lists them by name.
	CreateTenant(ctx context.Context, t Tenant) (Tenant, error)
	Tenants(ctx context.Context) ([]Tenant, error)
	// CreateKey stores a new API key (its tenant is created if missing) and
	// returns it with the key's one-time full form, "fk_<id>_<secret>" (keys.go).
	CreateKey(ctx context.Context, k Key) (Key, string, error)
	// ListKeys lists a tenant's keys ("": all), revoked ones too, never secrets.
	ListKeys(ctx context.Context, tenant string) ([]Key, error)
	// LookupKey finds a key by its public id, revoked or not.
	LookupKey(ctx context.Context, id string) (Key, error)
	// RevokeKey marks a key revoked (idempotent; ErrNotFound if unknown).
	RevokeKey(ctx context.Context, id string) error

	Close() error
}

// sqlStore implements Store for both databases; d holds what differs.
type sqlStore struct {
	db  *sql.DB
	d   *dialect
	now func() time.Time
}

var _ Store = (*sqlStore)(nil)

// Open opens (creating if needed) the registry at url and brings its schema up
// to date: "postgres://..." or "postgresql://..." is PostgreSQL (a search_path
// parameter selects the schema); "sqlite://PATH[?busy_timeout=MS]" or a plain
// path is SQLite; "" is SQLite at ./registry.db. A database whose schema is
// newer than this binary is refused (ErrSchema).
func Open(ctx context.Context, url string) (Store, error) {
	switch {
	case strings.HasPrefix(url, "postgres://") || strings.HasPrefix(url, "postgresql://"):
		return open(ctx, postgresDialect, url)
	case strings.Contains(url, "://") && !strings.HasPrefix(url, "sqlite://"):
		return nil, errf(ErrInvalid, "registry url "+quote(redact(url)), "unsupported scheme (want sqlite:// or postgres://)")
	case url == "":
		url = "registry.db"
	}
	dsn, err := sqliteDSN(url)
	if err != nil {
		return nil, err
	}
	return open(ctx, sqliteDialect, dsn)
}

// OpenDir opens the SQLite registry at dataDir/registry.db, creating dataDir.
func OpenDir(ctx context.Context, dataDir string) (Store, error) {
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, fmt.Errorf("registry: data dir: %w", err)
	}
	return Open(ctx, "sqlite://"+filepath.Join(dataDir, "registry.db"))
}

func open(ctx context.Context, d *dialect, dsn string) (*sqlStore, error) {
	db, err := sql.Open(d.driver, dsn)
	if err != nil {
		return nil, fmt.Errorf("registry: open %s: %w", d.name, err)
	}
	s := &sqlStore{db: db, d: d, now: func() time.Time { return time.Now().UTC() }}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the database.
func (s *sqlStore) Close() error { return s.db.Close() }

// redact drops a password from a URL for error messages.
func redact(u string) string {
	if at := strings.LastIndex(u, "@"); at >= 0 {
		if i := strings.Index(u, "://"); i >= 0 && i < at {
			return u[:i+3] + "***" + u[at:]
		}
	}
	return u
}

// runner is what both *sql.DB and *sql.Tx offer.
type runner interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// conn runs the package's '?' queries on a database or a transaction.
type conn struct {
	r runner
	d *dialect
}

func (c conn) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return c.r.ExecContext(ctx, c.d.rebind(q), args...)
}

func (c conn) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return c.r.QueryContext(ctx, c.d.rebind(q), args...)
}

func (c conn) row(ctx context.Context, q string, args ...any) *sql.Row {
	return c.r.QueryRowContext(ctx, c.d.rebind(q), args...)
}

func (s *sqlStore) read() conn { return conn{r: s.db, d: s.d} }

// change is one audited write. fn does the work and fills in the audit row
// (its Object and Detail may depend on what fn found); the row is written in
// the same transaction, so a change never exists without its audit row.
type change struct {
	Action string
	Object string
	Detail map[string]any
	At     int64 // set by write: the transaction's timestamp (µs)
}

func (s *sqlStore) write(ctx context.Context, ch *change, fn func(c conn) error) error {
	ch.At = s.now().UnixMicro()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return s.dbErr(ch.Action, err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	c := conn{r: tx, d: s.d}
	if err := fn(c); err != nil {
		return s.dbErr(ch.Action, err)
	}
	who, why := actorOf(ctx)
	if ch.Detail == nil {
		ch.Detail = map[string]any{}
	}
	if why != "" {
		ch.Detail["reason"] = why
	}
	detail, err := json.Marshal(ch.Detail)
	if err != nil {
		return fmt.Errorf("registry: %s: audit detail: %w", ch.Action, err)
	}
	if _, err := c.exec(ctx, `INSERT INTO audit_log (at, actor, action, object, detail) VALUES (?, ?, ?, ?, ?)`,
		ch.At, who, ch.Action, ch.Object, string(detail)); err != nil {
		return s.dbErr(ch.Action, err)
	}
	return s.commit(ctx, tx, ch.Action)
}

// commit commits tx, begun with ctx. When ctx has ended (a client that went away),
// database/sql has rolled tx back itself and Commit says only that tx is done: the
// change did not happen, because of ctx, not of the database, and the error says so
// (the API answers 499, not 500).
func (s *sqlStore) commit(ctx context.Context, tx *sql.Tx, op string) error {
	err := tx.Commit()
	if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, sql.ErrTxDone) {
		return fmt.Errorf("registry: %s: %w", op, ctxErr)
	}
	return s.dbErr(op, err)
}

// dbErr passes the package's own errors through and gives a driver error its
// sentinel (ErrUnavailable for a locked or full database).
func (s *sqlStore) dbErr(op string, err error) error {
	if err == nil {
		return nil
	}
	var oe *objError
	if errors.As(err, &oe) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if c := s.d.classify(err); c != nil {
		return fmt.Errorf("registry: %s: %w", op, c)
	}
	return fmt.Errorf("registry: %s: %w", op, err)
}

// collect runs a query and scans every row with scan.
func collect[T any](ctx context.Context, c conn, scan func(scanner) (T, error), q string, args ...any) ([]T, error) {
	rows, err := c.query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

type scanner interface{ Scan(dest ...any) error }

// pair is a two-column row (name, value).
type pair[V any] struct {
	k string
	v V
}

func scanPair[V any](r scanner) (pair[V], error) {
	var p pair[V]
	err := r.Scan(&p.k, &p.v)
	return p, err
}

func micros(t int64) time.Time { return time.UnixMicro(t).UTC() }

// jsonText encodes a map or struct column; nil maps become "{}".
func jsonText(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	if string(b) == "null" {
		return "{}", nil
	}
	return string(b), nil
}
