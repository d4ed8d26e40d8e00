package registry

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
)

func versionAuditObj(model string, v int64) string {
	return "model/" + model + "/version/" + strconv.FormatInt(v, 10)
}

func (s *sqlStore) CreateVersion(ctx context.Context, v ModelVersion) (ModelVersion, error) {
	cols, err := s.prepareVersion(&v)
	if err != nil {
		return ModelVersion{}, err
	}
	who, _ := actorOf(ctx)
	ch := &change{Action: "version.create"}
	err = s.write(ctx, ch, func(c conn) error {
		if err := lockModel(ctx, c, v.Model, ch.At); err != nil {
			return err
		}
		if err := s.numberVersion(ctx, c, &v); err != nil {
			return err
		}
		ch.Object = versionAuditObj(v.Model, v.Version)
		ch.Detail = map[string]any{"source": v.Source, "digest": v.Digest, "backend": v.Backend}
		args := append([]any{v.Model, v.Version, v.Source, v.Digest, v.Backend}, cols...)
		args = append(args, v.Lineage.RunID, v.Lineage.DatasetURI, v.Lineage.DatasetHash, v.Lineage.ParentVersion,
			string(StageNone), who, ch.At)
		_, err = c.exec(ctx, `INSERT INTO model_versions (`+versionCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, args...)
		return err
	})
	if err != nil {
		return ModelVersion{}, err
	}
	return s.Version(ctx, v.Model, v.Version)
}

// lockModel touches the model row (its updated time) first thing in a
// transaction. On PostgreSQL that row lock serialises changes that read then
// write across a model's versions (max+1 numbering, archiving the other
// Production versions), which READ COMMITTED would otherwise let interleave;
// SQLite's immediate transactions are serial already.
func lockModel(ctx context.Context, c conn, model string, at int64) error {
	res, err := c.exec(ctx, `UPDATE registered_models SET updated = ? WHERE name = ?`, at, model)
	return mustAffect(res, err, errf(ErrNotFound, modelObj(model), "no such registered model"))
}

// numberVersion gives v its number (max+1) or checks the one it asked for, and
// checks its parent version exists.
func (s *sqlStore) numberVersion(ctx context.Context, c conn, v *ModelVersion) error {
	if v.Version == 0 {
		if err := c.row(ctx, `SELECT COALESCE(MAX(version), 0) + 1 FROM model_versions WHERE model = ?`, v.Model).Scan(&v.Version); err != nil {
			return err
		}
	} else if _, err := s.versionIn(ctx, c, v.Model, v.Version); err == nil {
		return errf(ErrExists, versionObj(v.Model, v.Version), "already exists")
	} else if !errors.Is(err, ErrNotFound) {
		return err
	}
	if p := v.Lineage.ParentVersion; p != 0 {
		if _, err := s.versionIn(ctx, c, v.Model, p); err != nil {
			if errors.Is(err, ErrNotFound) {
				return errf(ErrInvalid, versionObj(v.Model, v.Version), "lineage parent version %d does not exist", p)
			}
			return err
		}
	}
	return nil
}

// prepareVersion validates v, computes the digest of a folder source, and
// encodes the JSON columns (signature, tags, metrics, params) in column order.
// It runs before the transaction: hashing a folder may take a while.
func (s *sqlStore) prepareVersion(v *ModelVersion) ([]any, error) {
	if err := validModel(v.Model); err != nil {
		return nil, err
	}
	obj := fmt.Sprintf("model %q new version", v.Model)
	switch {
	case v.Version < 0:
		return nil, errf(ErrInvalid, obj, "version %d: must be > 0 (or 0 to number it max+1)", v.Version)
	case v.Stage != "" && v.Stage != StageNone:
		return nil, errf(ErrInvalid, obj, "a new version starts in stage None, got %q (use TransitionStage)", v.Stage)
	case v.Lineage.ParentVersion < 0:
		return nil, errf(ErrInvalid, obj, "lineage parent version %d: must be > 0", v.Lineage.ParentVersion)
	}
	for k, m := range v.Metrics {
		if math.IsNaN(m) || math.IsInf(m, 0) {
			return nil, errf(ErrInvalid, obj, "metric %q is %v; only finite numbers can be stored", k, m)
		}
	}
	if err := checkSignature(obj, v.Signature); err != nil {
		return nil, err
	}
	digest, err := sourceDigest(obj, v.Source, v.Digest)
	if err != nil {
		return nil, err
	}
	v.Digest = digest
	var cols []any
	for _, x := range []any{v.Signature, v.Tags, v.Metrics, v.Params} {
		t, err := jsonText(x)
		if err != nil {
			return nil, errf(ErrInvalid, obj, "%v", err)
		}
		cols = append(cols, t)
	}
	return cols, nil
}

func checkSignature(obj string, sig Signature) error {
	for _, specs := range [][]TensorSpec{sig.Inputs, sig.Outputs} {
		for i, t := range specs {
			if t.Name == "" || t.Datatype == "" {
				return errf(ErrInvalid, obj, "signature tensor %d: name and datatype are required", i)
			}
			for _, d := range t.Shape {
				if d < -1 {
					return errf(ErrInvalid, obj, "signature tensor %q: dimension %d (want >= 0, or -1 for any)", t.Name, d)
				}
			}
		}
	}
	return nil
}

// sourceDigest checks the source and returns the digest to store. A local
// folder is hashed (DigestDir) and a differing caller digest refused; for a
// remote source (s3://...) the caller's digest, if any, is kept.
func sourceDigest(obj, source, given string) (string, error) {
	given = strings.ToLower(given)
	if given != "" && !isHexDigest(given) {
		return "", errf(ErrInvalid, obj, "digest %q: want 64 hex digits (SHA-256)", given)
	}
	dir, local := localSource(source)
	switch {
	case source == "":
		return "", errf(ErrInvalid, obj, "source is required")
	case strings.ContainsFunc(source, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return "", errf(ErrInvalid, obj, "source must not contain control characters")
	case !local:
		return given, nil
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return "", errf(ErrInvalid, obj, "source %q: not a readable folder", source)
	}
	got, err := DigestDir(dir)
	if err != nil {
		return "", errf(ErrInvalid, obj, "source %q: %v", source, err)
	}
	if given != "" && given != got {
		return "", errf(ErrInvalid, obj, "digest mismatch: source %q hashes to %s, caller gave %s", source, got, given)
	}
	return got, nil
}

// localSource reports whether source names a local folder (a plain path or
// file://) and which.
func localSource(source string) (string, bool) {
	if p, ok := strings.CutPrefix(source, "file://"); ok {
		return p, true
	}
	return source, !strings.Contains(source, "://")
}

func isHexDigest(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return false
		}
	}
	return true
}

const versionCols = `model, version, source, digest, backend, signature, tags, metrics, params,
	run_id, dataset_uri, dataset_hash, parent_version, stage, created_by, created`

func (s *sqlStore) Version(ctx context.Context, model string, version int64) (ModelVersion, error) {
	if err := validModel(model); err != nil {
		return ModelVersion{}, err
	}
	v, err := s.versionIn(ctx, s.read(), model, version)
	if err != nil {
		return ModelVersion{}, s.dbErr("get version", err)
	}
	return v, nil
}

func (s *sqlStore) versionIn(ctx context.Context, c conn, model string, version int64) (ModelVersion, error) {
	v, err := scanVersion(c.row(ctx, `SELECT `+versionCols+` FROM model_versions WHERE model = ? AND version = ?`, model, version))
	if errors.Is(err, sql.ErrNoRows) {
		return v, errf(ErrNotFound, versionObj(model, version), "no such version")
	}
	return v, err
}

func (s *sqlStore) Versions(ctx context.Context, model string) ([]ModelVersion, error) {
	if _, err := s.Model(ctx, model); err != nil {
		return nil, err
	}
	vs, err := collect(ctx, s.read(), scanVersion, `SELECT `+versionCols+` FROM model_versions WHERE model = ? ORDER BY version`, model)
	return vs, s.dbErr("list versions", err)
}

func scanVersion(r scanner) (ModelVersion, error) {
	var v ModelVersion
	var sig, tags, metrics, params, stage string
	var created int64
	err := r.Scan(&v.Model, &v.Version, &v.Source, &v.Digest, &v.Backend, &sig, &tags, &metrics, &params,
		&v.Lineage.RunID, &v.Lineage.DatasetURI, &v.Lineage.DatasetHash, &v.Lineage.ParentVersion,
		&stage, &v.CreatedBy, &created)
	if err != nil {
		return v, err
	}
	v.Stage, v.Created = Stage(stage), micros(created)
	for _, f := range []struct {
		text string
		into any
	}{{sig, &v.Signature}, {tags, &v.Tags}, {metrics, &v.Metrics}, {params, &v.Params}} {
		if err := json.Unmarshal([]byte(f.text), f.into); err != nil {
			return v, errf(ErrInvalid, versionObj(v.Model, v.Version), "stored JSON column: %v", err)
		}
	}
	return v, nil
}
