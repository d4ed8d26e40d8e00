package registry

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
)

func modelAuditObj(name string) string { return "model/" + name }

func (s *sqlStore) CreateModel(ctx context.Context, m RegisteredModel) (RegisteredModel, error) {
	if err := validModel(m.Name); err != nil {
		return RegisteredModel{}, err
	}
	tags, err := jsonText(m.Tags)
	if err != nil {
		return RegisteredModel{}, errf(ErrInvalid, modelObj(m.Name), "tags: %v", err)
	}
	ch := &change{Action: "model.create", Object: modelAuditObj(m.Name),
		Detail: map[string]any{"description": m.Description, "tags": m.Tags}}
	err = s.write(ctx, ch, func(c conn) error {
		if _, err := s.modelIn(ctx, c, m.Name); err == nil {
			return errf(ErrExists, modelObj(m.Name), "already exists")
		} else if !errors.Is(err, ErrNotFound) {
			return err
		}
		_, err := c.exec(ctx, `INSERT INTO registered_models (name, description, tags, created, updated) VALUES (?, ?, ?, ?, ?)`,
			m.Name, m.Description, tags, ch.At, ch.At)
		return err
	})
	if err != nil {
		return RegisteredModel{}, err
	}
	return s.Model(ctx, m.Name)
}

func (s *sqlStore) Model(ctx context.Context, name string) (RegisteredModel, error) {
	if err := validModel(name); err != nil {
		return RegisteredModel{}, err
	}
	m, err := s.modelIn(ctx, s.read(), name)
	if err != nil {
		return RegisteredModel{}, s.dbErr("get model", err)
	}
	return m, nil
}

const modelCols = `name, description, tags, created, updated`

func (s *sqlStore) modelIn(ctx context.Context, c conn, name string) (RegisteredModel, error) {
	m, err := scanModel(c.row(ctx, `SELECT `+modelCols+` FROM registered_models WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return m, errf(ErrNotFound, modelObj(name), "no such registered model")
	}
	return m, err
}

func (s *sqlStore) Models(ctx context.Context) ([]RegisteredModel, error) {
	rows, err := s.read().query(ctx, `SELECT `+modelCols+` FROM registered_models ORDER BY name`)
	if err != nil {
		return nil, s.dbErr("list models", err)
	}
	defer rows.Close()
	var out []RegisteredModel
	for rows.Next() {
		m, err := scanModel(rows)
		if err != nil {
			return nil, s.dbErr("list models", err)
		}
		out = append(out, m)
	}
	return out, s.dbErr("list models", rows.Err())
}

func (s *sqlStore) UpdateModel(ctx context.Context, m RegisteredModel) (RegisteredModel, error) {
	if err := validModel(m.Name); err != nil {
		return RegisteredModel{}, err
	}
	tags, err := jsonText(m.Tags)
	if err != nil {
		return RegisteredModel{}, errf(ErrInvalid, modelObj(m.Name), "tags: %v", err)
	}
	ch := &change{Action: "model.update", Object: modelAuditObj(m.Name),
		Detail: map[string]any{"description": m.Description, "tags": m.Tags}}
	err = s.write(ctx, ch, func(c conn) error {
		res, err := c.exec(ctx, `UPDATE registered_models SET description = ?, tags = ?, updated = ? WHERE name = ?`,
			m.Description, tags, ch.At, m.Name)
		return mustAffect(res, err, errf(ErrNotFound, modelObj(m.Name), "no such registered model"))
	})
	if err != nil {
		return RegisteredModel{}, err
	}
	return s.Model(ctx, m.Name)
}

func (s *sqlStore) DeleteModel(ctx context.Context, name string) error {
	if err := validModel(name); err != nil {
		return err
	}
	ch := &change{Action: "model.delete", Object: modelAuditObj(name)}
	return s.write(ctx, ch, func(c conn) error {
		var n int64
		if err := c.row(ctx, `SELECT COUNT(*) FROM model_versions WHERE model = ?`, name).Scan(&n); err != nil {
			return err
		}
		ch.Detail = map[string]any{"versions": n}
		res, err := c.exec(ctx, `DELETE FROM registered_models WHERE name = ?`, name)
		return mustAffect(res, err, errf(ErrNotFound, modelObj(name), "no such registered model"))
	})
}

// mustAffect turns "no row changed" into notFound.
func mustAffect(res interface{ RowsAffected() (int64, error) }, err, notFound error) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return notFound
	}
	return nil
}

type scanner interface{ Scan(dest ...any) error }

func scanModel(r scanner) (RegisteredModel, error) {
	var m RegisteredModel
	var tags string
	var created, updated int64
	if err := r.Scan(&m.Name, &m.Description, &tags, &created, &updated); err != nil {
		return m, err
	}
	m.Created, m.Updated = micros(created), micros(updated)
	if err := json.Unmarshal([]byte(tags), &m.Tags); err != nil {
		return m, errf(ErrInvalid, modelObj(m.Name), "stored tags: %v", err)
	}
	return m, nil
}
