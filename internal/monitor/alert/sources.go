package alert

import "time"

// Sources composes sources (drift, quality, requests): the first that has a model's
// metric answers. A source that takes a window gets the rule's.
type Sources []Source

var _ WindowSource = Sources(nil)

// Value implements Source.
func (ss Sources) Value(model, metric string) (float64, bool) {
	for _, s := range ss {
		if v, ok := s.Value(model, metric); ok {
			return v, true
		}
	}
	return 0, false
}

// ValueOver implements WindowSource.
func (ss Sources) ValueOver(model, metric string, window time.Duration) (float64, bool) {
	for _, s := range ss {
		v, ok := 0.0, false
		if ws, is := s.(WindowSource); is {
			v, ok = ws.ValueOver(model, metric, window)
		} else {
			v, ok = s.Value(model, metric)
		}
		if ok {
			return v, true
		}
	}
	return 0, false
}
