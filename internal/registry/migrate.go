package registry

import (
	"context"
	"embed"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migration is one numbered file of migrations/ (NNN_what.sql). Files are
// never edited once released: a change is a new file.
type migration struct {
	version int64
	name    string
	text    string
}

func loadMigrations() ([]migration, error) {
	entries, err := migrationFiles.ReadDir("migrations")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.ParseInt(num, 10, 64)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("registry: migration %q: name must start with a number and '_'", e.Name())
		}
		b, err := migrationFiles.ReadFile(path.Join("migrations", e.Name()))
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: e.Name(), text: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i, m := range ms {
		if m.version != int64(i+1) {
			return nil, fmt.Errorf("registry: migration %q: want number %d (numbers are contiguous from 1)", m.name, i+1)
		}
	}
	return ms, nil
}

// statements splits a migration into statements at semicolons that end a
// line, replacing the dialect's placeholders ({{identity}}). Comment lines
// are dropped; the migrations hold no semicolons inside literals.
func (d *dialect) statements(text string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "--") {
			continue
		}
		cur.WriteString(line + "\n")
		if strings.HasSuffix(strings.TrimSpace(line), ";") {
			out = append(out, strings.ReplaceAll(strings.TrimSpace(cur.String()), "{{identity}}", d.identity))
			cur.Reset()
		}
	}
	if rest := strings.TrimSpace(cur.String()); rest != "" {
		out = append(out, strings.ReplaceAll(rest, "{{identity}}", d.identity))
	}
	return out
}

// migrate applies the embedded migrations the database lacks, each in its own
// transaction with its schema_migrations row, so a crash leaves the schema at
// a whole version. A database that has a version this binary does not know
// was written by a newer Ferry and is refused rather than half-understood.
func (s *sqlStore) migrate(ctx context.Context) error {
	ms, err := loadMigrations()
	if err != nil {
		return err
	}
	if err := s.migrationStep(ctx, func(c conn) error {
		_, err := c.exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied BIGINT NOT NULL)`)
		return err
	}); err != nil {
		return fmt.Errorf("registry: create schema_migrations: %w", s.classified(err))
	}
	for _, m := range ms {
		if err := s.migrationStep(ctx, func(c conn) error { return s.applyOnce(ctx, c, m) }); err != nil {
			return fmt.Errorf("registry: migration %s: %w", m.name, s.classified(err))
		}
	}
	var newest int64
	if err := s.read().row(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&newest); err != nil {
		return fmt.Errorf("registry: read schema version: %w", s.classified(err))
	}
	if known := ms[len(ms)-1].version; newest > known {
		return fmt.Errorf("%w: the database is at schema version %d, newer than this binary's %d; use a newer ferry or another database",
			ErrSchema, newest, known)
	}
	return nil
}

func (s *sqlStore) migrationStep(ctx context.Context, fn func(c conn) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	c := conn{r: tx, d: s.d}
	if s.d.migrateLock != "" {
		if _, err := c.exec(ctx, s.d.migrateLock); err != nil {
			return err
		}
	}
	if err := fn(c); err != nil {
		return err
	}
	return tx.Commit()
}

// applyOnce runs m unless the database has it; the check is inside the
// migration's transaction (and lock), so two processes opening one database
// at once apply it once.
func (s *sqlStore) applyOnce(ctx context.Context, c conn, m migration) error {
	var n int
	if err := c.row(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = ?`, m.version).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	for _, st := range s.d.statements(m.text) {
		if _, err := c.exec(ctx, st); err != nil {
			return fmt.Errorf("%w\n%s", err, st)
		}
	}
	_, err := c.exec(ctx, `INSERT INTO schema_migrations (version, name, applied) VALUES (?, ?, ?)`,
		m.version, m.name, s.now().UnixMicro())
	return err
}

func (s *sqlStore) classified(err error) error {
	if c := s.d.classify(err); c != nil {
		return c
	}
	return err
}
