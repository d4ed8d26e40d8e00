package qualitytest

import (
	"context"
	"sync"

	"github.com/ferryml/ferry/internal/monitor/quality"
)

// Log holds predictions by model and request id; safe for concurrent use.
type Log struct {
	mu    sync.Mutex
	preds map[string]map[string]quality.Prediction
}

var _ quality.Predictions = (*Log)(nil)

// Put logs p for request id (p.Model says which model's log).
func (l *Log) Put(id string, p quality.Prediction) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.preds == nil {
		l.preds = map[string]map[string]quality.Prediction{}
	}
	if l.preds[p.Model] == nil {
		l.preds[p.Model] = map[string]quality.Prediction{}
	}
	l.preds[p.Model][id] = p
}

// Lookup implements quality.Predictions.
func (l *Log) Lookup(_ context.Context, model string, ids []string) (map[string]quality.Prediction, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]quality.Prediction{}
	for _, id := range ids {
		if p, ok := l.preds[model][id]; ok {
			out[id] = p
		}
	}
	return out, nil
}
