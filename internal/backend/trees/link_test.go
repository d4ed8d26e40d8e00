package trees

import (
	"math"
	"testing"
)

// TestObjectiveLinks checks the link of each objective family on one margin row,
// against the formula written out.
func TestObjectiveLinks(t *testing.T) {
	xgb := func(name string) link {
		l, _, err := xgbObjective(name)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	lgb := func(line string, classes int) link {
		l, err := lgbObjective(line, classes)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	for _, tc := range []struct {
		name string
		link link
		in   []float64
		want []float64
	}{
		{"xgb reg:squarederror", xgb("reg:squarederror"), []float64{0.7}, []float64{0.7}},
		{"xgb binary:logistic", xgb("binary:logistic"), []float64{0.5}, []float64{1 / (1 + math.Exp(-0.5))}},
		{"xgb binary:logitraw", xgb("binary:logitraw"), []float64{0.5}, []float64{0.5}},
		{"xgb binary:hinge", xgb("binary:hinge"), []float64{-0.2}, []float64{0}},
		{"xgb count:poisson", xgb("count:poisson"), []float64{0.3}, []float64{math.Exp(0.3)}},
		{"xgb multi:softmax", xgb("multi:softmax"), []float64{1, 2}, []float64{1 / (1 + math.E), math.E / (1 + math.E)}},
		{"lgb binary sigmoid:2", lgb("binary sigmoid:2", 1), []float64{0.5}, []float64{1 / (1 + math.Exp(-1))}},
		{"lgb multiclassova", lgb("multiclassova num_class:2 sigmoid:1", 2), []float64{0, 1}, []float64{0.5, 1 / (1 + math.Exp(-1))}},
		{"lgb regression sqrt", lgb("regression sqrt", 1), []float64{-1.5}, []float64{-2.25}},
		{"lgb poisson", lgb("poisson", 1), []float64{0.3}, []float64{math.Exp(0.3)}},
		{"lgb cross_entropy_lambda", lgb("cross_entropy_lambda", 1), []float64{0.3}, []float64{math.Log(1 + math.Exp(0.3))}},
		{"lgb custom (no objective line)", lgb("", 1), []float64{0.3}, []float64{0.3}},
		{"softmax of large margins stays finite", xgb("multi:softprob"), []float64{1000, 1000}, []float64{0.5, 0.5}},
	} {
		row := append([]float64(nil), tc.in...)
		tc.link.apply(row)
		for i := range row {
			if math.Abs(row[i]-tc.want[i]) > 1e-12 {
				t.Errorf("%s: %v -> %v, want %v", tc.name, tc.in, row, tc.want)
				break
			}
		}
	}
}

// TestBaseScoreMargins: XGBoost stores base_score in output space; the margin is its
// inverse link.
func TestBaseScoreMargins(t *testing.T) {
	for _, tc := range []struct {
		objective, base string
		groups          int
		want            []float64
	}{
		{"reg:squarederror", "5E-1", 1, []float64{0.5}},
		{"binary:logistic", "2.5E-1", 1, []float64{math.Log(0.25 / 0.75)}},
		{"reg:gamma", "2E0", 1, []float64{math.Log(2)}},
		{"multi:softprob", "5E-1", 3, []float64{0.5, 0.5, 0.5}},
		{"multi:softprob", "[1E-1,2E-1,3E-1]", 3, []float64{float64(float32(0.1)), float64(float32(0.2)), float64(float32(0.3))}},
	} {
		_, toMargin, err := xgbObjective(tc.objective)
		if err != nil {
			t.Fatal(err)
		}
		got, err := xgbBias(tc.base, tc.groups, toMargin)
		if err != nil {
			t.Fatalf("%s %s: %v", tc.objective, tc.base, err)
		}
		for i := range tc.want {
			if math.Abs(got[i]-tc.want[i]) > 1e-7 {
				t.Errorf("%s base_score %s: margins %v, want %v", tc.objective, tc.base, got, tc.want)
				break
			}
		}
	}
}
