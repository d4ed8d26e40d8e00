package quality

import (
	"math"
	"slices"
)

// The metric names of Metrics.Values, Value and the gauge's metric label.
const (
	Accuracy  = "accuracy"
	Precision = "precision" // binary: of class 1; multiclass: macro over the classes seen
	Recall    = "recall"
	F1        = "f1"
	ROCAUC    = "roc_auc" // binary; multiclass: one-vs-rest macro over classes with both outcomes
	MAE       = "mae"
	RMSE      = "rmse"
)

// pair is a label (as entry holds it) joined to its prediction.
type pair struct {
	out    []float64
	kind   uint8
	target float64
	name   string
}

// taskOf decides how pairs are scored: by config, else by the output's width and, for
// one column, by whether the labels are classes or values.
func taskOf(c ModelConfig, ps []pair) Task {
	if c.Task != TaskAuto || len(ps) == 0 {
		return c.Task
	}
	if len(ps[0].out) >= 2 {
		return Classification
	}
	classes := 0
	for _, p := range ps {
		if p.kind != kindValue {
			classes++
		}
	}
	if 2*classes > len(ps) {
		return Classification
	}
	return Regression
}

// score computes the task's metrics over ps; skipped counts pairs that do not fit
// (a value for a classifier, an unknown class, a non-finite output, a width that
// differs from the first pair's).
func score(task Task, c ModelConfig, ps []pair) (vals map[string]float64, n, skipped int) {
	if task == Regression {
		return regression(ps)
	}
	return classification(c, ps)
}

func regression(ps []pair) (map[string]float64, int, int) {
	var abs, sq float64
	n := 0
	for _, p := range ps {
		if p.kind != kindValue || len(p.out) != 1 || !finite(p.out[0]) {
			continue
		}
		d := p.out[0] - p.target
		abs += math.Abs(d)
		sq += d * d
		n++
	}
	if n == 0 {
		return map[string]float64{}, 0, len(ps)
	}
	return map[string]float64{MAE: abs / float64(n), RMSE: math.Sqrt(sq / float64(n))}, n, len(ps) - n
}

// classified is one usable classifier pair: the true and the predicted class, and
// the scores it had.
type classified struct {
	truth, pred int
	out         []float64
}

func classification(c ModelConfig, ps []pair) (map[string]float64, int, int) {
	if len(ps) == 0 {
		return map[string]float64{}, 0, 0
	}
	width := len(ps[0].out)
	k := max(width, 2)
	var cs []classified
	for _, p := range ps {
		t, ok := trueClass(c, p)
		if !ok || t >= k || len(p.out) != width || !allFinite(p.out) {
			continue
		}
		cs = append(cs, classified{truth: t, pred: predicted(p.out), out: p.out})
	}
	vals := map[string]float64{}
	if len(cs) == 0 {
		return vals, 0, len(ps)
	}
	conf := make([][]int, k) // conf[truth][pred]
	for i := range conf {
		conf[i] = make([]int, k)
	}
	hits := 0
	for _, x := range cs {
		conf[x.truth][x.pred]++
		if x.truth == x.pred {
			hits++
		}
	}
	vals[Accuracy] = float64(hits) / float64(len(cs))
	vals[Precision], vals[Recall], vals[F1] = prf(conf)
	if auc, ok := aucOf(cs, k, width); ok {
		vals[ROCAUC] = auc
	}
	return vals, len(cs), len(ps) - len(cs)
}

// trueClass maps a label to a class index.
func trueClass(c ModelConfig, p pair) (int, bool) {
	switch p.kind {
	case kindIndex:
		return int(p.target), true
	case kindName:
		i := slices.Index(c.Classes, p.name)
		return i, i >= 0
	}
	return 0, false
}

// predicted is the class a row predicts: its largest column (the first of equals),
// or for one column whether the score reaches 0.5.
func predicted(out []float64) int {
	if len(out) == 1 {
		if out[0] >= 0.5 {
			return 1
		}
		return 0
	}
	best := 0
	for i, v := range out {
		if v > out[best] {
			best = i
		}
	}
	return best
}

// prf is precision, recall and F1: of class 1 for two classes, else their macro
// averages over the classes that occur as truth or prediction (scikit-learn's
// average="macro"; a 0/0 counts 0). Macro F1 averages the per-class F1s.
func prf(conf [][]int) (p, r, f float64) {
	k := len(conf)
	stat := func(c int) (tp, fp, fn int) {
		tp = conf[c][c]
		for o := range k {
			if o != c {
				fp += conf[o][c]
				fn += conf[c][o]
			}
		}
		return
	}
	if k == 2 {
		tp, fp, fn := stat(1)
		return ratio(tp, tp+fp), ratio(tp, tp+fn), ratio(2*tp, 2*tp+fp+fn)
	}
	seen := 0
	for c := range k {
		tp, fp, fn := stat(c)
		if tp+fp+fn == 0 {
			continue
		}
		seen++
		p += ratio(tp, tp+fp)
		r += ratio(tp, tp+fn)
		f += ratio(2*tp, 2*tp+fp+fn)
	}
	if seen == 0 {
		return 0, 0, 0
	}
	return p / float64(seen), r / float64(seen), f / float64(seen)
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// aucOf is the ROC AUC: binary with the positive-class score (the one column, or
// column 1 of two); one-vs-rest macro for more classes, each class scored by its
// column, averaged over the classes that have both positives and negatives.
func aucOf(cs []classified, k, width int) (float64, bool) {
	if k == 2 {
		col := width - 1
		return mannWhitney(cs, func(x classified) (float64, bool) { return x.out[col], x.truth == 1 })
	}
	sum, n := 0.0, 0
	for c := range k {
		if a, ok := mannWhitney(cs, func(x classified) (float64, bool) { return x.out[c], x.truth == c }); ok {
			sum += a
			n++
		}
	}
	if n == 0 {
		return 0, false
	}
	return sum / float64(n), true
}

// mannWhitney is the AUC as the Mann–Whitney U statistic over ranks, ties given their
// average rank; false when one side is empty.
func mannWhitney(cs []classified, at func(classified) (float64, bool)) (float64, bool) {
	type sp struct {
		s   float64
		pos bool
	}
	xs := make([]sp, len(cs))
	npos := 0
	for i, c := range cs {
		xs[i].s, xs[i].pos = at(c)
		if xs[i].pos {
			npos++
		}
	}
	nneg := len(xs) - npos
	if npos == 0 || nneg == 0 {
		return 0, false
	}
	slices.SortFunc(xs, func(a, b sp) int { return cmpFloat(a.s, b.s) })
	rankSum := 0.0
	for i := 0; i < len(xs); {
		j := i
		for j < len(xs) && xs[j].s == xs[i].s {
			j++
		}
		avg := float64(i+j+1) / 2 // ranks i+1..j averaged
		for _, x := range xs[i:j] {
			if x.pos {
				rankSum += avg
			}
		}
		i = j
	}
	u := rankSum - float64(npos)*float64(npos+1)/2
	return u / (float64(npos) * float64(nneg)), true
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

func allFinite(fs []float64) bool {
	for _, f := range fs {
		if !finite(f) {
			return false
		}
	}
	return true
}
