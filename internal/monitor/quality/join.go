package quality

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Query selects the labelled predictions to score: one model; one version or all
// ("", one Metrics each); predictions served in [Since, Until) (zero: unbounded).
type Query struct {
	Model, Version string
	Since, Until   time.Time
}

// Metrics are one version's scores over a window.
type Metrics struct {
	Model   string    `json:"model"`
	Version string    `json:"version"`
	Task    Task      `json:"task"`
	Since   time.Time `json:"since,omitzero"`
	Until   time.Time `json:"until,omitzero"`
	// Labelled counts labels joined to this version's predictions in the window and
	// scored; Skipped those joined but unfit to score (see Values).
	Labelled int `json:"labelled"`
	Skipped  int `json:"skipped"`
	// Unmatched counts the model's labels whose request is not (yet) in the inference
	// log; it cannot be split by version, so every Metrics of a model repeats it.
	Unmatched int `json:"unmatched"`
	// Values by name: accuracy, precision, recall, f1, roc_auc (classifiers); mae,
	// rmse (regressors). A metric that is undefined for the data (an AUC with one
	// class present) is left out.
	Values map[string]float64 `json:"values"`
}

// Metrics joins the model's labels to their predictions (looking up the ids not
// found before) and scores them per version. With no label joined yet the answer is
// one Metrics with Version "" carrying Unmatched.
func (s *Store) Metrics(ctx context.Context, q Query) ([]Metrics, error) {
	if q.Model == "" {
		return nil, fmt.Errorf("%w: the model is empty", ErrInvalid)
	}
	if !q.Until.IsZero() && !q.Since.Before(q.Until) {
		return nil, fmt.Errorf("%w: since %s is not before until %s", ErrInvalid, q.Since.Format(time.RFC3339), q.Until.Format(time.RFC3339))
	}
	if err := s.join(ctx, q.Model); err != nil {
		return nil, err
	}
	groups, unmatched, cfg := s.collect(q)
	versions := make([]string, 0, len(groups))
	for v := range groups {
		versions = append(versions, v)
	}
	slices.Sort(versions)
	out := make([]Metrics, 0, len(versions))
	for _, v := range versions {
		out = append(out, scoreGroup(q, v, cfg, groups[v], unmatched))
	}
	if len(out) == 0 {
		out = append(out, Metrics{Model: q.Model, Since: q.Since, Until: q.Until, Unmatched: unmatched, Values: map[string]float64{}})
	}
	return out, nil
}

func scoreGroup(q Query, version string, cfg ModelConfig, ps []pair, unmatched int) Metrics {
	task := taskOf(cfg, ps)
	vals, n, skipped := score(task, cfg, ps)
	for k, v := range vals {
		if !finite(v) { // an RMSE past the float range; JSON has no Inf
			delete(vals, k)
		}
	}
	return Metrics{Model: q.Model, Version: version, Task: task, Since: q.Since, Until: q.Until,
		Labelled: n, Skipped: skipped, Unmatched: unmatched, Values: vals}
}

// join looks up the predictions of the model's labels not joined yet, in chunks,
// without holding the lock.
func (s *Store) join(ctx context.Context, model string) error {
	s.mu.Lock()
	var ids []string
	for id, e := range s.models[model] {
		if !e.joined {
			ids = append(ids, id)
		}
	}
	s.mu.Unlock()
	for len(ids) > 0 {
		n := min(len(ids), lookupChunk)
		found, err := s.preds.Lookup(ctx, model, ids[:n])
		if err != nil {
			return fmt.Errorf("quality: looking up predictions of %q: %w", model, err)
		}
		s.attach(model, found)
		ids = ids[n:]
	}
	return nil
}

// attach keeps found predictions beside their labels; a prediction of another model
// (a confused adapter) is ignored. Versions are interned: a model has few.
func (s *Store) attach(model string, found map[string]Prediction) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := s.models[model]
	versions := map[string]string{}
	for id, p := range found {
		e, ok := ids[id]
		if !ok || e.joined || (p.Model != "" && p.Model != model) {
			continue
		}
		v, seen := versions[p.Version]
		if !seen {
			v = strings.Clone(p.Version)
			versions[v] = v
		}
		e.joined, e.version, e.served, e.out = true, v, p.Time.UnixNano(), slices.Clone(p.Outputs)
		ids[id] = e
	}
}

// collect groups the joined labels q selects by version, and counts the unmatched.
func (s *Store) collect(q Query) (map[string][]pair, int, ModelConfig) {
	s.mu.Lock()
	defer s.mu.Unlock()
	groups := map[string][]pair{}
	unmatched := 0
	since, until := int64(math.MinInt64), int64(math.MaxInt64)
	if !q.Since.IsZero() {
		since = q.Since.UnixNano()
	}
	if !q.Until.IsZero() {
		until = q.Until.UnixNano()
	}
	for _, e := range s.models[q.Model] {
		switch {
		case !e.joined:
			unmatched++
		case q.Version != "" && e.version != q.Version, e.served < since, e.served >= until:
		default:
			groups[e.version] = append(groups[e.version], pair{out: e.out, kind: e.kind, target: e.target, name: e.name})
		}
	}
	return groups, unmatched, s.configs[q.Model]
}
