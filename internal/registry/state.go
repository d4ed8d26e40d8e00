package registry

import (
	"context"
	"encoding/json"
)

// Endpoint policies and rollout state are JSON owned by other packages (router,
// rollout); the registry checks only that they are JSON, keeps them
// transactionally beside the models they name, and audits every write.

func checkJSON(obj, what string, b []byte) error {
	if !json.Valid(b) {
		return errf(ErrInvalid, obj, "%s is not valid JSON", what)
	}
	return nil
}

func (s *sqlStore) SaveEndpoint(ctx context.Context, name string, policy []byte) error {
	if err := validEndpoint(name); err != nil {
		return err
	}
	obj := "endpoint " + quote(name)
	if err := checkJSON(obj, "policy", policy); err != nil {
		return err
	}
	ch := &change{Action: "endpoint.save", Object: "endpoint/" + name, Detail: map[string]any{"policy": json.RawMessage(policy)}}
	return s.write(ctx, ch, func(c conn) error {
		_, err := c.exec(ctx, `INSERT INTO endpoints (name, policy, updated) VALUES (?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET policy = excluded.policy, updated = excluded.updated`,
			name, string(policy), ch.At)
		return err
	})
}

func (s *sqlStore) Endpoints(ctx context.Context) (map[string][]byte, error) {
	return s.jsonMap(ctx, "endpoints", `SELECT name, policy FROM endpoints`)
}

func (s *sqlStore) SaveRollout(ctx context.Context, endpoint string, status []byte, event []byte) error {
	if err := validEndpoint(endpoint); err != nil {
		return err
	}
	obj := "rollout of endpoint " + quote(endpoint)
	if err := checkJSON(obj, "status", status); err != nil {
		return err
	}
	detail := map[string]any{"status": json.RawMessage(status)}
	if event != nil {
		if err := checkJSON(obj, "event", event); err != nil {
			return err
		}
		detail["event"] = json.RawMessage(event)
	}
	ch := &change{Action: "rollout.save", Object: "rollout/" + endpoint, Detail: detail}
	return s.write(ctx, ch, func(c conn) error {
		_, err := c.exec(ctx, `INSERT INTO rollouts (endpoint, status, updated) VALUES (?, ?, ?)
			ON CONFLICT (endpoint) DO UPDATE SET status = excluded.status, updated = excluded.updated`,
			endpoint, string(status), ch.At)
		if err != nil || event == nil {
			return err
		}
		_, err = c.exec(ctx, `INSERT INTO rollout_events (endpoint, event, at) VALUES (?, ?, ?)`, endpoint, string(event), ch.At)
		return err
	})
}

func (s *sqlStore) Rollouts(ctx context.Context) (map[string][]byte, error) {
	return s.jsonMap(ctx, "rollouts", `SELECT endpoint, status FROM rollouts`)
}

func (s *sqlStore) RolloutHistory(ctx context.Context, endpoint string, limit int) ([][]byte, error) {
	if err := validEndpoint(endpoint); err != nil {
		return nil, err
	}
	q := `SELECT id, event FROM rollout_events WHERE endpoint = ? ORDER BY id DESC`
	args := []any{endpoint}
	if limit > 0 {
		q += ` LIMIT ?`
		args = append(args, limit)
	}
	events, err := collect(ctx, s.read(), func(r scanner) ([]byte, error) {
		var e string
		err := r.Scan(&e)
		return []byte(e), err
	}, `SELECT event FROM (`+q+`) newest ORDER BY id`, args...)
	return events, s.dbErr("rollout history", err)
}

func (s *sqlStore) jsonMap(ctx context.Context, op, q string) (map[string][]byte, error) {
	pairs, err := collect(ctx, s.read(), scanPair[string], q)
	if err != nil {
		return nil, s.dbErr(op, err)
	}
	out := make(map[string][]byte, len(pairs))
	for _, p := range pairs {
		out[p.k] = []byte(p.v)
	}
	return out, nil
}
