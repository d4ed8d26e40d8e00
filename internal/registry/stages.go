package registry

import (
	"context"
)

func (s *sqlStore) TransitionStage(ctx context.Context, model string, version int64, to Stage, archiveExisting bool) (ModelVersion, error) {
	if err := validModel(model); err != nil {
		return ModelVersion{}, err
	}
	if !to.valid() {
		return ModelVersion{}, errf(ErrInvalid, versionObj(model, version), "stage %q: want None, Staging, Production or Archived", to)
	}
	ch := &change{Action: "version.stage", Object: versionAuditObj(model, version)}
	err := s.write(ctx, ch, func(c conn) error {
		if err := lockModel(ctx, c, model, ch.At); err != nil {
			return err
		}
		v, err := s.versionIn(ctx, c, model, version)
		if err != nil {
			return err
		}
		ch.Detail = map[string]any{"from": v.Stage, "to": to}
		if err := s.moveStage(ctx, c, v, to, ch.At); err != nil {
			return err
		}
		if !archiveExisting || (to != StageProduction && to != StageStaging) {
			return nil
		}
		archived, err := s.archiveOthers(ctx, c, model, version, to, ch.At)
		ch.Detail["archived"] = archived
		return err
	})
	if err != nil {
		return ModelVersion{}, err
	}
	return s.Version(ctx, model, version)
}

// moveStage sets v's stage and appends the history row; a transition to the
// stage a version is already in is still recorded (it was asked for, and why).
func (s *sqlStore) moveStage(ctx context.Context, c conn, v ModelVersion, to Stage, at int64) error {
	who, why := actorOf(ctx)
	if _, err := c.exec(ctx, `UPDATE model_versions SET stage = ? WHERE model = ? AND version = ?`, string(to), v.Model, v.Version); err != nil {
		return err
	}
	_, err := c.exec(ctx, `INSERT INTO stage_history (model, version, from_stage, to_stage, actor, reason, at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		v.Model, v.Version, string(v.Stage), string(to), who, why, at)
	return err
}

// archiveOthers moves every other version in stage to Archived, each with its
// history row, and returns their numbers.
func (s *sqlStore) archiveOthers(ctx context.Context, c conn, model string, keep int64, stage Stage, at int64) ([]int64, error) {
	others, err := collect(ctx, c, scanVersion,
		`SELECT `+versionCols+` FROM model_versions WHERE model = ? AND stage = ? AND version <> ? ORDER BY version`,
		model, string(stage), keep)
	if err != nil {
		return nil, err
	}
	archived := []int64{}
	for _, v := range others {
		if err := s.moveStage(ctx, c, v, StageArchived, at); err != nil {
			return nil, err
		}
		archived = append(archived, v.Version)
	}
	return archived, nil
}

func (s *sqlStore) StageHistory(ctx context.Context, model string, version int64) ([]StageChange, error) {
	if _, err := s.Model(ctx, model); err != nil {
		return nil, err
	}
	q := `SELECT model, version, from_stage, to_stage, actor, reason, at FROM stage_history WHERE model = ?`
	args := []any{model}
	if version != 0 {
		if _, err := s.Version(ctx, model, version); err != nil {
			return nil, err
		}
		q += ` AND version = ?`
		args = append(args, version)
	}
	hist, err := collect(ctx, s.read(), scanStageChange, q+` ORDER BY id`, args...)
	return hist, s.dbErr("stage history", err)
}

func scanStageChange(r scanner) (StageChange, error) {
	var h StageChange
	var from, to string
	var at int64
	err := r.Scan(&h.Model, &h.Version, &from, &to, &h.Actor, &h.Reason, &at)
	h.From, h.To, h.At = Stage(from), Stage(to), micros(at)
	return h, err
}
