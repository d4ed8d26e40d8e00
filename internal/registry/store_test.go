package registry

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(runChild())
	}
	goleak.VerifyTestMain(m)
}

// pgBase is the test server (Debian's postgresql, trust auth).
const pgBase = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable&connect_timeout=3"

// opener returns the URL of a fresh, empty registry database.
type opener struct {
	name string
	url  func(t *testing.T) string
}

var openers = []opener{
	{"sqlite", func(t *testing.T) string { return "sqlite://" + filepath.Join(t.TempDir(), "registry.db") }},
	{"postgres", pgURL},
}

// pgURL makes a schema of its own for the test (dropped in Cleanup) and
// returns a URL whose search_path selects it.
func pgURL(t *testing.T) string {
	t.Helper()
	db, err := sql.Open("pgx", pgBase)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.PingContext(context.Background()); err != nil {
		t.Skipf("PostgreSQL not reachable at 127.0.0.1:5432: %v", err)
	}
	var b [6]byte
	rand.Read(b[:])
	schema := "reg_" + hex.EncodeToString(b[:])
	if _, err := db.Exec(`CREATE SCHEMA ` + schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		if _, err := db.Exec(`DROP SCHEMA ` + schema + ` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return pgBase + "&search_path=" + schema
}

// eachStore runs f on a fresh store of every kind.
func eachStore(t *testing.T, f func(t *testing.T, s *sqlStore)) {
	for _, o := range openers {
		t.Run(o.name, func(t *testing.T) { f(t, mustOpen(t, o.url(t))) })
	}
}

func mustOpen(t *testing.T, url string) *sqlStore {
	t.Helper()
	st, err := Open(context.Background(), url)
	if err != nil {
		t.Fatalf("Open(%s): %v", url, err)
	}
	t.Cleanup(func() { st.Close() })
	return st.(*sqlStore)
}

func wantErr(t *testing.T, what string, err, kind error) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("%s: err = %v, want %v", what, err, kind)
	}
}

// must(f())(t) returns f's value and fails the test on its error.
func must[T any](v T, err error) func(t *testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func noErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// versionDir writes a small artifact folder and returns it.
func versionDir(t *testing.T, content string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "model.onnx"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func auditCount(t *testing.T, s Store) int {
	t.Helper()
	return len(must(s.Audit(context.Background(), AuditFilter{}))(t))
}

// A write whose context ends before its commit (a client that went away) fails with the
// context's error, which the API answers 499, not 500: database/sql rolls such a
// transaction back itself and Commit then says only that it is done. A fuzzed DELETE
// of a model got "sql: transaction has already been committed or rolled back" as a 500.
func TestCommitAfterCancel(t *testing.T) {
	eachStore(t, func(t *testing.T, s *sqlStore) {
		ctx, cancel := context.WithCancel(context.Background())
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO audit_log (at, actor, action, object, detail) VALUES (1, '', 'test.cancel', 'x', '{}')`); err != nil {
			t.Fatal(err)
		}
		cancel()
		time.Sleep(50 * time.Millisecond) // database/sql's watcher rolls the transaction back
		wantErr(t, "commit", s.commit(ctx, tx, "test.cancel"), context.Canceled)
		var n int
		if err := s.db.QueryRow(`SELECT COUNT(*) FROM audit_log WHERE action = 'test.cancel'`).Scan(&n); err != nil || n != 0 {
			t.Errorf("audit rows of the cancelled write: %d (%v), want 0", n, err)
		}
	})
}
