package registry

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestMigrations(t *testing.T) {
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range openers {
		t.Run(o.name, func(t *testing.T) {
			ctx := context.Background()
			url := o.url(t)
			s := mustOpen(t, url)
			must(s.CreateModel(ctx, RegisteredModel{Name: "kept"}))(t)
			noErr(t, s.Close())

			s = mustOpen(t, url) // re-open: nothing to apply, data intact
			var n, newest int64
			noErr(t, s.read().row(ctx, `SELECT COUNT(*), MAX(version) FROM schema_migrations`).Scan(&n, &newest))
			if n != int64(len(ms)) || newest != ms[len(ms)-1].version {
				t.Errorf("schema_migrations has %d rows up to %d, want %d up to %d", n, newest, len(ms), ms[len(ms)-1].version)
			}
			must(s.Model(ctx, "kept"))(t)

			// A newer ferry migrated this database: refuse it, touch nothing.
			must(s.read().exec(ctx, `INSERT INTO schema_migrations (version, name, applied) VALUES (?, ?, ?)`,
				newest+1, "999_future.sql", 0))(t)
			noErr(t, s.Close())
			_, err := Open(ctx, url)
			wantErr(t, "open newer schema", err, ErrSchema)
			if !strings.Contains(err.Error(), fmt.Sprintf("schema version %d, newer than this binary's %d", newest+1, newest)) {
				t.Errorf("err = %q, want it to name both versions", err)
			}
		})
	}
}

func TestOpenURLs(t *testing.T) {
	ctx := context.Background()
	for _, url := range []string{"mysql://x/y", "sqlite://", "sqlite:///tmp/x.db?journal=off", "sqlite:///tmp/x.db?busy_timeout=-1"} {
		if _, err := Open(ctx, url); err == nil {
			t.Errorf("Open(%q) succeeded", url)
		} else {
			wantErr(t, "Open("+url+")", err, ErrInvalid)
		}
	}
	dir := filepath.Join(t.TempDir(), "data")
	s, err := OpenDir(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := os.Stat(filepath.Join(dir, "registry.db")); err != nil {
		t.Errorf("OpenDir did not create registry.db: %v", err)
	}
}

// TestLockedSQLite: another connection holds the write lock past busy_timeout;
// the change fails with ErrUnavailable naming the lock, reads go on (WAL), and
// nothing of the change is written.
func TestLockedSQLite(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "registry.db")
	s := mustOpen(t, "sqlite://"+path+"?busy_timeout=200")
	must(s.CreateModel(ctx, RegisteredModel{Name: "before"}))(t)
	before := auditCount(t, s)

	other, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	holder := must(other.Conn(ctx))(t)
	defer holder.Close()
	must(holder.ExecContext(ctx, `BEGIN IMMEDIATE`))(t)

	start := time.Now()
	_, err = s.CreateModel(ctx, RegisteredModel{Name: "blocked"})
	wantErr(t, "write under lock", err, ErrUnavailable)
	if !strings.Contains(err.Error(), "locked") || time.Since(start) < 150*time.Millisecond {
		t.Errorf("err = %q after %v; want a lock error after the 200 ms busy timeout", err, time.Since(start))
	}
	must(s.Model(ctx, "before"))(t) // readers are not blocked

	must(holder.ExecContext(ctx, `ROLLBACK`))(t)
	_, err = s.Model(ctx, "blocked")
	wantErr(t, "half-written model", err, ErrNotFound)
	if n := auditCount(t, s); n != before {
		t.Errorf("%d audit rows for the refused change", n-before)
	}
	must(s.CreateModel(ctx, RegisteredModel{Name: "blocked"}))(t)
}

// TestFullSQLite: with the page limit reached a write fails cleanly, the store
// still reads, and writes work again once the limit is raised.
func TestFullSQLite(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t, "sqlite://"+filepath.Join(t.TempDir(), "registry.db"))
	s.db.SetMaxOpenConns(1) // max_page_count is per connection: keep one
	must(s.CreateModel(ctx, RegisteredModel{Name: "small"}))(t)
	var pages int64
	noErr(t, s.read().row(ctx, `PRAGMA page_count`).Scan(&pages))
	must(s.read().exec(ctx, fmt.Sprintf(`PRAGMA max_page_count = %d`, pages+1)))(t)
	before := auditCount(t, s)

	big := RegisteredModel{Name: "big", Description: strings.Repeat("x", 1<<20)}
	_, err := s.CreateModel(ctx, big)
	wantErr(t, "write to a full database", err, ErrUnavailable)
	if !strings.Contains(err.Error(), "full") {
		t.Errorf("err = %q, want it to say the database is full", err)
	}
	must(s.Model(ctx, "small"))(t)
	_, err = s.Model(ctx, "big")
	wantErr(t, "half-written model", err, ErrNotFound)
	if n := auditCount(t, s); n != before {
		t.Errorf("%d audit rows for the failed change", n-before)
	}
	must(s.read().exec(ctx, `PRAGMA max_page_count = 1073741823`))(t)
	must(s.CreateModel(ctx, big))(t)
}

// childEnv makes the test binary a registering child (see runChild).
const childEnv = "FERRY_REGISTRY_TEST_CHILD"

// runChild registers versions (with an alias move each) until killed, printing
// each committed number.
func runChild() int {
	ctx := WithActor(context.Background(), "child", "")
	s, err := Open(ctx, os.Getenv(childEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if _, err := s.CreateModel(ctx, RegisteredModel{Name: "m"}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for {
		v, err := s.CreateVersion(ctx, ModelVersion{Model: "m", Source: "s3://b/m", Metrics: map[string]float64{"x": 1}})
		if err == nil {
			err = s.SetAlias(ctx, "m", "champion", v.Version)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Println(v.Version)
	}
}

// TestKillMidRegistration: SIGKILL a process registering versions; on reopen
// every version has its audit row, no row is partial, and the schema is whole.
func TestKillMidRegistration(t *testing.T) {
	ctx := context.Background()
	url := "sqlite://" + filepath.Join(t.TempDir(), "registry.db")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+url)
	out := must(cmd.StdoutPipe())(t)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	noErr(t, cmd.Start())
	lines := bufio.NewScanner(out)
	seen := int64(0)
	for seen < 25 && lines.Scan() {
		seen = must(strconv.ParseInt(lines.Text(), 10, 64))(t)
	}
	noErr(t, cmd.Process.Signal(syscall.SIGKILL))
	cmd.Wait()
	if seen < 25 {
		t.Fatalf("child stopped after %d versions: %s", seen, stderr.String())
	}

	s := mustOpen(t, url)
	var check string
	noErr(t, s.read().row(ctx, `PRAGMA integrity_check`).Scan(&check))
	if check != "ok" {
		t.Fatalf("integrity_check: %s", check)
	}
	vs := must(s.Versions(ctx, "m"))(t)
	if int64(len(vs)) < seen {
		t.Fatalf("%d versions after reopen, but the child saw %d committed", len(vs), seen)
	}
	creates := must(s.Audit(ctx, AuditFilter{Action: "version.create"}))(t)
	if len(creates) != len(vs) {
		t.Errorf("%d versions but %d version.create audit rows", len(vs), len(creates))
	}
	for i, v := range vs {
		if v.Version != int64(i+1) || v.Source == "" || v.Metrics["x"] != 1 || v.CreatedBy != "child" {
			t.Fatalf("version row %d is partial or out of order: %+v", i, v)
		}
		if creates[i].Object != versionAuditObj("m", v.Version) {
			t.Errorf("audit row %d is for %s, want version %d", i, creates[i].Object, v.Version)
		}
	}
	champ := must(s.ResolveAlias(ctx, "m", "champion"))(t)
	sets := must(s.Audit(ctx, AuditFilter{Action: "alias.set"}))(t)
	if champ < int64(len(vs))-1 || len(sets) < len(vs)-1 {
		t.Errorf("alias at %d with %d alias audit rows for %d versions", champ, len(sets), len(vs))
	}
	// And the store still takes changes.
	must(s.CreateVersion(ctx, ModelVersion{Model: "m", Source: "s3://b/m"}))(t)
}
