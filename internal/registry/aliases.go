package registry

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
)

func aliasAuditObj(model, alias string) string { return "model/" + model + "/alias/" + alias }

// SetAlias is one upsert, so a reader sees the old version or the new one,
// never no alias at all.
func (s *sqlStore) SetAlias(ctx context.Context, model, alias string, version int64) error {
	if err := validModel(model); err != nil {
		return err
	}
	if err := validAlias(model, alias); err != nil {
		return err
	}
	ch := &change{Action: "alias.set", Object: aliasAuditObj(model, alias), Detail: map[string]any{"version": version}}
	return s.write(ctx, ch, func(c conn) error {
		if _, err := s.versionIn(ctx, c, model, version); err != nil {
			return err
		}
		var old sql.NullInt64
		err := c.row(ctx, `SELECT version FROM model_aliases WHERE model = ? AND alias = ?`, model, alias).Scan(&old)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if old.Valid {
			ch.Detail["previous"] = old.Int64
		}
		_, err = c.exec(ctx, `INSERT INTO model_aliases (model, alias, version, updated) VALUES (?, ?, ?, ?)
			ON CONFLICT (model, alias) DO UPDATE SET version = excluded.version, updated = excluded.updated`,
			model, alias, version, ch.At)
		return err
	})
}

func (s *sqlStore) DeleteAlias(ctx context.Context, model, alias string) error {
	if err := validModel(model); err != nil {
		return err
	}
	if err := validAlias(model, alias); err != nil {
		return err
	}
	ch := &change{Action: "alias.delete", Object: aliasAuditObj(model, alias)}
	return s.write(ctx, ch, func(c conn) error {
		var old int64
		err := c.row(ctx, `SELECT version FROM model_aliases WHERE model = ? AND alias = ?`, model, alias).Scan(&old)
		if errors.Is(err, sql.ErrNoRows) {
			return errf(ErrNotFound, modelObj(model)+" alias "+quote(alias), "no such alias")
		} else if err != nil {
			return err
		}
		ch.Detail = map[string]any{"previous": old}
		_, err = c.exec(ctx, `DELETE FROM model_aliases WHERE model = ? AND alias = ?`, model, alias)
		return err
	})
}

func (s *sqlStore) ResolveAlias(ctx context.Context, model, label string) (int64, error) {
	if err := validModel(model); err != nil {
		return 0, err
	}
	c := s.read()
	switch {
	case allDigits(label):
		n, err := strconv.ParseInt(label, 10, 64)
		if err != nil || n <= 0 {
			return 0, errf(ErrInvalid, modelObj(model), "version %q: want a number > 0", label)
		}
		if _, err := s.versionIn(ctx, c, model, n); err != nil {
			return 0, s.dbErr("resolve version", err)
		}
		return n, nil
	case label == AliasLatest:
		var n int64
		if err := c.row(ctx, `SELECT COALESCE(MAX(version), 0) FROM model_versions WHERE model = ?`, model).Scan(&n); err != nil {
			return 0, s.dbErr("resolve latest", err)
		}
		if n == 0 {
			return 0, errf(ErrNotFound, modelObj(model), "no versions, so no %q", AliasLatest)
		}
		return n, nil
	}
	if err := validAlias(model, label); err != nil {
		return 0, err
	}
	var n int64
	err := c.row(ctx, `SELECT version FROM model_aliases WHERE model = ? AND alias = ?`, model, label).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, errf(ErrNotFound, modelObj(model)+" alias "+quote(label), "no such alias")
	}
	return n, s.dbErr("resolve alias", err)
}

func (s *sqlStore) Aliases(ctx context.Context, model string) (map[string]int64, error) {
	if _, err := s.Model(ctx, model); err != nil {
		return nil, err
	}
	pairs, err := collect(ctx, s.read(), scanPair[int64], `SELECT alias, version FROM model_aliases WHERE model = ?`, model)
	if err != nil {
		return nil, s.dbErr("list aliases", err)
	}
	out := make(map[string]int64, len(pairs))
	for _, p := range pairs {
		out[p.k] = p.v
	}
	return out, nil
}
