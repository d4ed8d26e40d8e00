package trees

import (
	"fmt"

	"github.com/ferryml/ferry/internal/explain"
)

// Explain returns the exact TreeSHAP attributions of rows (NumFeatures each) in the
// model's margin space: they add up to the raw margin (trees plus base score, before
// the link) minus the expected margin. Rows are rounded to float32 first when the model
// splits on float32 features, as prediction does.
func (m *Model) Explain(rows [][]float64) (*explain.Result, error) {
	if m.shapErr != nil {
		return nil, fmt.Errorf("trees: no exact explanation for this model: %w", m.shapErr)
	}
	if m.float32Features {
		rounded := make([][]float64, len(rows))
		for i, r := range rows {
			rounded[i] = make([]float64, len(r))
			for j, v := range r {
				rounded[i][j] = float64(float32(v))
			}
		}
		rows = rounded
	}
	r, err := m.shap.Explain(rows)
	if err != nil {
		return nil, err
	}
	r.Link = m.link.String()
	return r, nil
}

// ExplainExact is Model.Explain, for the server's explain endpoint, which reaches the
// instance through its lease (core's ExactExplainer).
func (in *Instance) ExplainExact(rows [][]float64) (*explain.Result, error) {
	r, err := in.m.Explain(rows)
	if err == nil && in.opts.OutputMargin {
		r.Link = "identity" // the instance serves the margins themselves
	}
	return r, err
}

// String names the link as explanations report it.
func (l link) String() string {
	switch l.kind {
	case sigmoid:
		if l.scale != 1 {
			return fmt.Sprintf("sigmoid(%g·margin)", l.scale)
		}
		return "sigmoid"
	case softmax:
		return "softmax"
	case exponential:
		return "exp"
	case step:
		return "step"
	case softplus:
		return "softplus"
	case square:
		return "signed_square"
	}
	return "identity"
}
