package registry

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
)

func modelAuditObj(name string) string { return "model/" + name }

// modelChange validates m for a create or update and prepares its tags
// column and audit row.
func modelChange(action string, m RegisteredModel) (string, *change, error) {
	if err := validModel(m.Name); err != nil {
		return "", nil, err
	}
	tags, err := jsonText(m.Tags)
	if err != nil {
		return "", nil, errf(ErrInvalid, modelObj(m.Name), "tags: %v", err)
	}
	return tags, &change{Action: action, Object: modelAuditObj(m.Name),
		Detail: map[string]any{"description": m.Description, "tags": m.Tags}}, nil
}

func (s *sqlStore) CreateModel(ctx context.Context, m RegisteredModel) (RegisteredModel, error) {
	tags, ch, err := modelChange("model.create", m)
	if err != nil {
		return RegisteredModel{}, err
	}
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
	ms, err := collect(ctx, s.read(), scanModel, `SELECT `+modelCols+` FROM registered_models ORDER BY name`)
	return ms, s.dbErr("list models", err)
}

func (s *sqlStore) UpdateModel(ctx context.Context, m RegisteredModel) (RegisteredModel, error) {
	tags, ch, err := modelChange("model.update", m)
	if err != nil {
		return RegisteredModel{}, err
	}
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
